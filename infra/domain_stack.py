"""One nested stack per catalog domain: the domain's functions, their triggers, its queues
and its state machines. Built in phases by the root stack, because triggers need things that only
exist once every domain has its functions (the authorizer, state machines of any domain)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnResource, NestedStack, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions import catalog
from infra.api import add_request_authorizer
from infra.functions import Shared, apply_access, build_function, construct_id, wire_trigger
from infra.queues import build_queue
from infra.state_machines import MachineRef, build_state_machine

# CloudFormation's limit is 500 per template; 400 leaves room for growth between a test
# run and a deploy.
MAX_RESOURCES = 400


class DomainStack(NestedStack):
    def __init__(self, scope: Construct, construct_id_: str, *, domain: str, shared: Shared) -> None:
        super().__init__(scope, construct_id_, description=f"Stratus {shared.config.stage}: {domain} domain")
        self.domain = domain
        self.shared = shared
        self.entries = [fn for fn in catalog.FUNCTIONS if fn.domain == domain]
        self.specs = [spec for spec in catalog.STATE_MACHINES if spec.domain == domain]
        # Phase 1: the functions themselves, and the domain's queues (with their S3 notifications).
        self.functions: dict[str, lambda_.Function] = {
            fn.name: build_function(self, fn, shared) for fn in self.entries}
        self.queues: dict[str, sqs.Queue] = {
            spec.name: build_queue(self, spec, shared) for spec in catalog.QUEUES if spec.domain == domain}
        self.state_machines: dict[str, MachineRef] = {}
        # Function URLs of the domain's FunctionUrl entries (phase 4): the edge's origins.
        self.function_urls: dict[str, lambda_.FunctionUrl] = {}

    # Phase 2 (one domain only): the API's authorizer, beside its function.
    def add_authorizer(self) -> apigwv2.IHttpRouteAuthorizer | None:
        entries = [fn for fn in self.entries if isinstance(fn.trigger, catalog.Authorizer)]
        if not entries:
            return None
        (fn,) = entries
        assert isinstance(fn.trigger, catalog.Authorizer)
        return add_request_authorizer(self, self.shared.api, self.functions[fn.name],
                                      identity_header=fn.trigger.identity_header)

    # Phase 3: state machines (their tasks may live in any domain).
    def add_state_machines(self, functions: Mapping[str, lambda_.IFunction]) -> dict[str, MachineRef]:
        for spec in self.specs:
            self.state_machines[spec.name] = build_state_machine(self, spec, functions, self.shared)
        return self.state_machines

    # Phase 4: permissions and triggers.
    def wire(self, *, authorizer: apigwv2.IHttpRouteAuthorizer | None,
             state_machines: Mapping[str, MachineRef],
             state_machine_tasks: Mapping[str, set[str]],
             queues: Mapping[str, sqs.IQueue],
             functions: Mapping[str, lambda_.IFunction]) -> None:
        for fn in self.entries:
            function = self.functions[fn.name]
            apply_access(function, fn, self.shared, state_machines, queues, functions)
            url = wire_trigger(self, function, fn, self.shared, authorizer=authorizer,
                               state_machine_tasks=state_machine_tasks, queues=queues)
            if url is not None:
                self.function_urls[fn.name] = url
        count = self.resource_count()
        if count > MAX_RESOURCES:
            raise ValueError(f"the {self.domain} stack would hold {count} resources (limit {MAX_RESOURCES}): "
                             "split the domain in functions/catalog/")

    def resource_count(self) -> int:
        return sum(1 for c in self.node.find_all() if isinstance(c, CfnResource) and Stack.of(c) is self)


def domain_stack_id(domain: str) -> str:
    return construct_id(domain)
