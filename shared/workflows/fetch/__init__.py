"""The safe fetch path of HTTP-request nodes (docs/workflows-http-requests.md): every request
through the egress policy (shared/egress.py), each redirect included, with a capped response.
In AWS it runs in its own function outside the VPC; locally, in-process."""
