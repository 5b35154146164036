-- A chat kept out of a conversation (Coze's auto_save_history: false, docs/coze-api.md) runs in
-- a conversation of its own; this names the conversation it stands in for, so the chat can still
-- be retrieved, cancelled or continued by the id the client was given (the named one's).
-- No foreign key: deleting the named conversation leaves the stand-in, as any other of the user's.
ALTER TABLE conversations ADD COLUMN kept_out_of uuid;
