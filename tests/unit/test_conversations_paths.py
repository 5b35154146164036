"""Path and query parameters of the conversation API: malformed ids answer like missing ones."""

from __future__ import annotations

import uuid

import pytest

from shared.conversations.errors import ConversationNotFound, MessageNotFound
from shared.conversations.paths import agent_filter, conversation_id, message_id
from shared.errors import ValidationFailed


def test_path_ids_parse_or_answer_not_found() -> None:
    value = uuid.uuid4()
    assert conversation_id(str(value)) == value and message_id(str(value).upper()) == value
    for bad in ("", "x", "builtin-quick-answer", str(value) + "0"):
        with pytest.raises(ConversationNotFound) as conv:
            conversation_id(bad)
        assert conv.value.status == 404 and conv.value.details == {"conversation_id": bad}
        with pytest.raises(MessageNotFound):
            message_id(bad)


def test_agent_filter_takes_an_id_or_a_builtin_slug() -> None:
    value = uuid.uuid4()
    assert agent_filter(None) is None
    assert agent_filter(str(value)) == value
    assert agent_filter("builtin-quick-answer") == "builtin-quick-answer"
    for bad in ("support", "builtin-", "BUILTIN-x", "builtin-a b"):
        with pytest.raises(ValidationFailed) as err:
            agent_filter(bad)
        assert err.value.details["fields"][0]["field"] == "query.agent_id"
