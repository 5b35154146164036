"""Workflows: definitions (drafts, published versions, Dify import and export), the
interpreter's state machine and its task functions
(docs/adr/0029-workflow-interpreter-infrastructure.md)."""

from __future__ import annotations

from functions.catalog import coze, dify
from functions.catalog._common import EMBED_ACCESS, EMBED_LAYERS, KMS, PROVIDER_KEYS
from shared.catalog import (
    CHILD_EXECUTIONS,
    DATABASE,
    REDIS,
    Access,
    Function,
    FunctionUrl,
    Http,
    Invoked,
    Schedule,
    SseEvent,
    StateMachineSpec,
    StepFunctionsTask,
    StreamRoute,
    bucket,
    invoke,
    state_machine,
)
from shared.workflows.sandbox.ports import SANDBOX_MEMORY_MB, SANDBOX_TIMEOUT_S

_W = "workflows"
_RUN = "workflow-run"
_FETCH = "workflow-fetch"
_CODE = "workflow-code"
_WORKFLOW = "/api/v1/workflows/{workflow_id}"
_RUNS = "/api/v1/workflow-runs/{run_id}"
_STREAM = "workflow-stream"
_MCP = "tools-mcp"
# Checking tool nodes against the tenant's tools (publishing, running a draft, importing a Dify
# tool): the argument schemas (jsonschema, the "tools" layer) and an MCP server's tool list
# through the MCP function (its bearer token decrypted first).
_TOOL_CHECKS = (KMS, invoke(_MCP))
_TOOL_CHECK_LAYERS = ("base", "aws", "tools")
# What tool and agent nodes call (docs/workflows.md §13): tools through the tools' runtime —
# tenant URLs through the fetch function, MCP servers through the MCP function, workflow tools as
# runs of the interpreter —, agents through the chat's generation (the model gateway, retrieval).
_PAYLOADS = bucket("payloads", "read", "write")
# Uploaded files: tenants' objects only (a document extractor reads tenants/<its tenant>/...).
_NODE_ACCESS = (*EMBED_ACCESS, _PAYLOADS, bucket("uploads", "read", prefix="tenants/"), invoke(_FETCH), invoke(_CODE),
                invoke(_MCP), state_machine(_RUN, "start"))
_NODE_LAYERS = (*EMBED_LAYERS, "tools")
_RUNS_API = "shared.workflows.runs_api"
_DATA = "shared.workflows.run_event_data"
# What a run sends, in order: started, then per node started, deltas (LLM text) and finished,
# with iteration.next / loop.next before each item or round and paused / resumed around human
# input; finished (plus error when it failed), and done last. A replay sends the same events
# from where the client left.
_RUN_EVENTS = (
    SseEvent("workflow.started", f"{_DATA}:WorkflowStartedEvent", "The run began"),
    SseEvent("node.started", f"{_DATA}:NodeStartedEvent", "A node began (in a container: with its item or round)"),
    SseEvent("node.delta", f"{_DATA}:NodeDeltaEvent", "A piece of an LLM node's text, as the model streams it"),
    SseEvent("node.finished", f"{_DATA}:NodeFinishedEvent",
             "A node settled: status, outputs (cut to a preview), elapsed, tokens, when it ended"),
    SseEvent("iteration.next", f"{_DATA}:IterationNextEvent", "An iteration starts an item"),
    SseEvent("loop.next", f"{_DATA}:LoopNextEvent", "A loop starts a round"),
    SseEvent("workflow.paused", f"{_DATA}:WorkflowPausedEvent",
             "The run waits for a human-input node's answer: the node and its form"),
    SseEvent("workflow.resumed", f"{_DATA}:WorkflowResumedEvent", "The paused node got its answer; the run goes on"),
    SseEvent("workflow.finished", f"{_DATA}:WorkflowFinishedEvent", "The run ended: its status, outputs or error"),
    SseEvent("error", f"{_DATA}:RunErrorEvent", "The run failed: the error and the node that failed it"),
    SseEvent("done", f"{_DATA}:RunDoneEvent", "The last event: the run's final status"),
)
# Node outputs past the inline bound (shared/workflows/run_store.py) live in the payloads bucket.
_PAYLOADS_READ = bucket("payloads", "read")
# The run store (PostgreSQL, the payloads bucket) and the run's event stream (Redis).
_RUN_STORE = (DATABASE, REDIS, _PAYLOADS)


def _api(name: str, module: str, method: str, path: str, permission: str, summary: str) -> Function:
    # Plain CRUD on PostgreSQL: publishing and import read the model catalog but never call a provider.
    return Function(name, f"functions.workflows.{module}", _W,
                    Http(method, path, permission=permission, summary=summary, tag="workflows"),
                    access=(DATABASE, REDIS))


def _runs_api(name: str, module: str, method: str, path: str, summary: str, *, timeout_s: int = 10,
              control: tuple[str, ...] = ("stop",), payloads: Access = _PAYLOADS_READ) -> Function:
    # Reads runs (large outputs from the payloads bucket) and starts or stops their executions.
    return Function(name, f"functions.workflows.{module}", _W,
                    Http(method, path, permission="workflow:run", summary=summary, tag="workflow-runs"),
                    timeout_s=timeout_s, layers=("base", "aws"),
                    access=(DATABASE, REDIS, payloads,
                            *((state_machine(_RUN, *control),) if control else ())))  # type: ignore[arg-type]


def _task(name: str, module: str, description: str, **kwargs: object) -> Function:
    return Function(name, f"functions.workflows.{module}", _W, StepFunctionsTask(_RUN),
                    description=description, **kwargs)  # type: ignore[arg-type]


FUNCTIONS: tuple[Function, ...] = (
    _api("workflows-create", "create_workflow", "POST", "/api/v1/workflows", "workflow:write",
         "Create a workflow (a draft)"),
    _api("workflows-list", "list_workflows", "GET", "/api/v1/workflows", "workflow:read",
         "List the tenant's workflows"),
    # Import keeps a file's model only where a call can succeed: it reads whether the platform's
    # provider keys are set (never using them).
    Function("workflows-import", "functions.workflows.import_workflow", _W,
             Http("POST", "/api/v1/workflows/import", permission="workflow:write",
                  summary="Create a workflow from a Dify app DSL file", tag="workflows"),
             layers=_TOOL_CHECK_LAYERS, access=(DATABASE, REDIS, PROVIDER_KEYS, *_TOOL_CHECKS)),
    _api("workflows-get", "get_workflow", "GET", _WORKFLOW, "workflow:read",
         "One workflow with its draft and the draft's problems"),
    _api("workflows-update", "update_workflow", "PATCH", _WORKFLOW, "workflow:write", "Change a workflow's draft"),
    _api("workflows-delete", "delete_workflow", "DELETE", _WORKFLOW, "workflow:write", "Delete a workflow"),
    Function("workflows-publish", "functions.workflows.publish_workflow", _W,
             Http("POST", _WORKFLOW + "/publish", permission="workflow:write",
                  summary="Validate the draft and publish it as the next version", tag="workflows"),
             layers=_TOOL_CHECK_LAYERS, access=(DATABASE, REDIS, *_TOOL_CHECKS)),
    _api("workflows-versions-list", "list_workflow_versions", "GET", _WORKFLOW + "/versions", "workflow:read",
         "A workflow's published versions, newest first"),
    _api("workflows-versions-get", "get_workflow_version", "GET", _WORKFLOW + "/versions/{number}", "workflow:read",
         "One published version of a workflow"),
    _api("workflows-export", "export_workflow", "GET", _WORKFLOW + "/export", "workflow:read",
         "Export the draft or a published version as a Dify app DSL file"),
    # Runs --------------------------------------------------------------------------------
    # Starting and listing runs, and following a run's events: the workflow-stream function
    # below (the edge routes by path; the streaming form of POST …/runs brings the path).
    _runs_api("workflow-runs-get", "get_run", "GET", _RUNS, "A run with its outputs, error and node history",
              control=()),
    _runs_api("workflow-runs-cancel", "cancel_run", "POST", _RUNS + "/cancel",
              "Cancel a pending, running or paused run"),
    # Human input (docs/adr/0036): the answer is recorded (an answer past the inline bound is
    # written to the payloads bucket, under the runs' prefix), then the execution waiting on the
    # pause's task token is resumed (SendTaskSuccess).
    _runs_api("workflow-runs-resume", "resume_run", "POST", _RUNS + "/resume",
              "Answer the form a paused run waits on (human input) and resume it", control=("signal",),
              payloads=bucket("payloads", "read", "write", prefix="workflow-runs/")),
    # The streaming function (docs/adr/0035-workflow-run-streaming.md): every mode of starting a
    # run (a sync run waits up to WORKFLOW_SYNC_WAIT_S, 25 s, as on the HTTP API), the list of
    # runs on the same path, and the replay of a run's events. It only reads the run's stream:
    # the run goes on in Step Functions whether a client follows or not. A follower ends within
    # WORKFLOW_STREAM_FOLLOW_S (840 s), below the timeout; the client resumes by Last-Event-ID.
    Function(_STREAM, "functions.workflows.stream", _W,
             FunctionUrl((_WORKFLOW + "/runs", _RUNS + "/events", dify.WORKFLOWS_RUN, coze.WORKFLOW_PREFIX,
                          coze.WORKFLOWS_PREFIX), routes=(
                 StreamRoute("POST", _WORKFLOW + "/runs", "workflow:run",
                             "Run a workflow: \"mode\": \"stream\" answers its events as SSE until done; sync waits "
                             "for the result within a bound (else 202); async answers 202 at once",
                             tag="workflow-runs", body=f"{_RUNS_API}:StartRun", response=f"{_RUNS_API}:WorkflowRunOut",
                             events=_RUN_EVENTS, accepted=True, operation_id="workflow-runs-create"),
                 StreamRoute("GET", _WORKFLOW + "/runs", "workflow:run", "A workflow's runs, newest first",
                             tag="workflow-runs", query=f"{_RUNS_API}:RunListQuery",
                             response=f"{_RUNS_API}:WorkflowRunSummary", paged=True,
                             operation_id="workflow-runs-list"),
                 StreamRoute("GET", _RUNS + "/events", "workflow:run",
                             "Replay a run's events after Last-Event-ID, then follow it live until done",
                             tag="workflow-runs", query=f"{_RUNS_API}:RunEventsQuery", events=_RUN_EVENTS,
                             operation_id="workflow-run-events"),
                 # Dify's workflow runs (docs/adr/0046): the same runs, in Dify's shape.
                 *dify.WORKFLOW_ROUTES,
                 # Coze's workflow API (docs/adr/0049): the same runs and workflows, in Coze's shape.
                 *coze.WORKFLOW_ROUTES,
             )),
             # Running a draft checks it as publishing does (its tool nodes against the tenant's tools).
             memory_mb=512, timeout_s=900, layers=("base", "aws", "web", "tools"),
             # Coze's stream_resume answers a pause as POST …/resume does: the answer may be written to
             # the payloads bucket (the runs' prefix), then the execution's task token is answered.
             access=(DATABASE, REDIS, _PAYLOADS_READ, bucket("payloads", "write", prefix="workflow-runs/"),
                     state_machine(_RUN, "start", "signal"), *_TOOL_CHECKS),
             description="Starts workflow runs (streamed, sync or async), lists them and streams their events, "
                         "served by a function URL"),
    Function("workflow-runs-reconcile", "functions.workflows.reconcile_runs", _W,
             Schedule("rate(5 minutes)", "End workflow runs whose execution ended without a final record"),
             layers=("base", "aws"), access=(DATABASE, REDIS, state_machine(_RUN, "describe")),
             description="Fails runs whose execution is over or gone, so no run stays running"),
    # The interpreter's tasks ------------------------------------------------------------------
    # Cheap nodes (start, end, if/else, templates, aggregators) run fused in the step.
    _task("workflow-step", "step", "Runs a workflow run's ready nodes and says what comes next", timeout_s=120,
          memory_mb=512, layers=("base", "aws"), access=_RUN_STORE),
    # Long nodes (model calls, retrieval, code, HTTP requests) run as branches, one invocation
    # each: the model gateway and retrieval (as chat has them), the fetch and sandbox functions.
    _task("workflow-branch", "branch", "Runs one node of a workflow run (a parallel branch)", memory_mb=1024,
          # Document extractors read files under the tenant's prefix of the uploads bucket.
          timeout_s=900, layers=_NODE_LAYERS, access=_NODE_ACCESS),
    # A long iteration's items (docs/adr/0038): a batch per child execution of the Distributed
    # Map, through the same node runner as a branch, so the same access.
    _task("workflow-items", "items", "Runs a batch of a long iteration's items (a Distributed Map child)",
          memory_mb=1024, timeout_s=900, layers=_NODE_LAYERS, access=_NODE_ACCESS),
    _task("workflow-await", "await_input", "Keeps the task token of a run paused for human input",
          access=(DATABASE, REDIS)),
    _task("workflow-continue", "continue_run", "Carries a workflow run on in a fresh execution",
          layers=("base", "aws"), access=(state_machine(_RUN, "start"),), in_vpc=False),
    _task("workflow-fail", "fail_run", "Records a workflow run as failed when a task gives up",
          access=(DATABASE, REDIS)),
    # HTTP-request nodes' requests to tenant URLs (docs/workflows-http-requests.md): outside the
    # VPC, with no access at all (its role only logs) and no secrets, so a URL that slips past
    # the egress policy still reaches nothing of the platform's. httpx2 comes with "llm". Its
    # timeout is shared.workflows.fetch.wiring.FETCH_FUNCTION_TIMEOUT_S (the callers wait that long).
    Function(_FETCH, "functions.workflows.fetch", _W, Invoked(), in_vpc=False, layers=("base", "llm"),
             memory_mb=512, timeout_s=900,
             description="Makes one HTTP request of a workflow node, outside the VPC, through the egress policy"),
    # The code sandbox (docs/adr/0032-code-sandbox.md): tenants' Python in a fresh interpreter per
    # run. Outside the VPC, no access at all (its role writes its own logs and traces only), no
    # settings beyond the directory it empties after each run; sized for the largest limits.
    Function(_CODE, "functions.workflows.run_code", _W, Invoked(), in_vpc=False, memory_mb=SANDBOX_MEMORY_MB,
             timeout_s=SANDBOX_TIMEOUT_S, description="Runs a workflow code node's Python in a fresh, limited "
             "interpreter that reaches nothing of the platform", env={"WORKFLOW_CODE_WIPE_DIR": "/tmp"}),  # noqa: S108 - Lambda's only writable directory
)

STATE_MACHINES: tuple[StateMachineSpec, ...] = (
    # A long iteration's Distributed Map starts child executions of the machine and reads its
    # item reader's file from the payloads bucket, under the runs' prefix only.
    StateMachineSpec(_RUN, _W, "shared.workflows.state_machines:run_definition",
                     "Runs any workflow version as data: a step loop with parallel branches and human input",
                     # A run pauses for human input as long as its node says, without a timeout
                     # up to a year (shared.workflows.interpreter.UNBOUNDED_WAIT_S): so may the run.
                     timeout_s=365 * 24 * 3600,
                     access=(CHILD_EXECUTIONS, bucket("payloads", "read", prefix="workflow-runs/"))),
)
