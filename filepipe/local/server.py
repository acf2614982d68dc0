"""`filepipe local`: moto, the provisioned template, the function runner, the HTTP API and the web UI."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from filepipe.local.endpoint import AwsEndpoint, in_process_transport
from filepipe.local.services.awslambda.quotas import NEW_ACCOUNT_CONCURRENCY_QUOTA
from filepipe.local.services.events.delivery import EventDelivery, TargetError
from filepipe.runtime_state import (
    ACCESS_KEY_ID,
    DEFAULT_STATE_DIR,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    SECRET_ACCESS_KEY,
    remove_state,
    write_state,
)
from filepipe.template import PSEUDO_ACCOUNT_ID, ROOT, TEMPLATE_PATH, Template, load_template_cached

log = logging.getLogger("filepipe.local")

STACK_NAME = "filepipe-local"
# Well inside DefinitionsMaxAgeHours (48 h by default) of the scan step.
DEFINITIONS_REFRESH_SECONDS = 6 * 3600
_THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
}


@dataclass
class LocalOptions:
    """How to run: ports (API and AWS default to the two after the web port), template, parameters."""

    port: int = 8000
    api_port: int | None = None
    aws_port: int | None = None
    host: str = "127.0.0.1"
    region: str = "us-east-1"
    stack_name: str = STACK_NAME
    template_path: Path = TEMPLATE_PATH
    site_dir: Path = ROOT / "frontend"
    state_dir: Path = DEFAULT_STATE_DIR
    # The transformed template and parsed state machines, keyed by their sources: shared by every run.
    cache_dir: Path = ROOT / ".filepipe" / "cache"
    parameters: dict[str, str] = field(default_factory=dict)
    # SES identities verified at start, as the operator does by clicking SES's link; nothing else is.
    verified_emails: tuple[str, ...] = ()
    # SES starts in the sandbox, as in a new account: only verified recipients get email.
    ses_production_access: bool = False
    # The account's Lambda concurrent executions quota: a new account's unless told otherwise.
    lambda_concurrency_quota: int = NEW_ACCOUNT_CONCURRENCY_QUOTA
    clamd: bool = True
    # A clamd already running (tcp://host:port, unix:///path) to use instead of starting one: the local
    # GuardDuty scans with it, and the ClamdAddress parameter defaults to it.
    clamd_address: str | None = None
    # More busy instances of a function than cores only add memory and context switches.
    max_workers_per_function: int = max(2, os.cpu_count() or 2)

    @property
    def ports(self) -> tuple[int, int, int]:
        return (self.port, self.api_port or self.port + 1, self.aws_port or self.port + 2)


class _Server:
    """A threaded werkzeug server in its own thread."""

    def __init__(
        self, host: str, port: int, app: Any, moto_handler: bool = False, keep_alive: bool = False
    ) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        from filepipe.local.http_server import KeepAliveRequestHandler

        base: type[WSGIRequestHandler] = WSGIRequestHandler
        if moto_handler:
            from moto.moto_server.werkzeug_app import MotoRequestHandler

            base = MotoRequestHandler
        bases = (KeepAliveRequestHandler, base) if keep_alive else (base,)

        class QuietHandler(*bases):  # type: ignore[misc]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                return

        self.server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"http-{port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _managed_policy_arns(template: Template) -> set[str]:
    arns: set[str] = set()
    for resource in template.of_type("AWS::IAM::Role").values():
        arns.update(
            a for a in resource.get("Properties", {}).get("ManagedPolicyArns", []) if isinstance(a, str)
        )
    return arns


class LocalRuntime:
    """Everything `filepipe local` runs, started and stopped as one."""

    def __init__(self, options: LocalOptions, out: TextIO | None = None) -> None:
        self.options = options
        self.out = out or sys.stdout
        web_port, api_port, aws_port = options.ports
        # Listening on every interface still means browsers on this machine use the loopback address.
        host = "127.0.0.1" if options.host in ("", "0.0.0.0") else options.host  # noqa: S104
        self.web_url = f"http://{host}:{web_port}"
        self.api_url = f"http://{host}:{api_port}"
        self.aws_endpoint = f"http://{host}:{aws_port}"
        from filepipe.local.console import console_url, new_token

        self.console_token = new_token()
        self.console_url = console_url(self.web_url, self.console_token)
        self.clamd_address: str | None = None
        self.clamd_note = ""
        self.malware_protection_note = ""
        self.startup_seconds = 0.0
        self.stack: Any = None
        self._servers: list[_Server] = []
        self._stoppers: list[Callable[[], None]] = []
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._session: Any = None
        self._endpoint_app: AwsEndpoint | None = None
        self._clamd: Any = None
        self._stopped = threading.Event()
        self.runner: Any = None
        self.iam: Any = None

    # ------------------------------------------------------------ helpers
    def client(self, service: str) -> Any:
        with self._clients_lock:
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                if self._session is None:
                    from filepipe.local.moto_core_patches import sdk_data_loader
                    from filepipe.local.sdk import memoize_user_agent_sanitizer

                    memoize_user_agent_sanitizer()
                    self._session = boto3.session.Session()
                    self._session._session.register_component("data_loader", sdk_data_loader())
                client = self._session.client(
                    service,
                    region_name=self.options.region,
                    endpoint_url=self.aws_endpoint,
                    aws_access_key_id=ACCESS_KEY_ID,
                    aws_secret_access_key=SECRET_ACCESS_KEY,
                    config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32),
                )
                if self._endpoint_app is not None:
                    client.meta.events.register("before-send", in_process_transport(self._endpoint_app))
                self._clients[service] = client
            return self._clients[service]

    def _function_role(self, spec: Any) -> str:
        """The execution role a function runs as (its Role, as Lambda holds it)."""
        return str(self.client("lambda").get_function_configuration(FunctionName=spec.name)["Role"])

    def _secret_for(self, access_key: str) -> str | None:
        if access_key == ACCESS_KEY_ID:
            return SECRET_ACCESS_KEY
        from filepipe.local.services.iam.patches import access_key_secret

        return access_key_secret(access_key)

    def _start_clamd(self, max_bytes: int) -> str | None:
        """Debian's clamd with a locally generated database, or None (the scan step then fails closed)."""
        from filepipe.clamd import NOT_INSTALLED, ClamdStartError, LocalClamd

        if not self.options.clamd:
            self.clamd_note = "disabled (--no-clamd); scans fail closed"
            return None
        if self.options.clamd_address:
            self.clamd_note = f"{self.options.clamd_address} (--clamd-address, started elsewhere)"
            return self.options.clamd_address
        if not LocalClamd.is_available():
            self.clamd_note = NOT_INSTALLED
            return None
        # Its own directory: clamd locks its log file, and two runtimes may run side by side.
        work_dir = Path(tempfile.mkdtemp(prefix="clamd-", dir=self.options.state_dir))
        self._stoppers.append(lambda: shutil.rmtree(work_dir, ignore_errors=True))
        clamd = LocalClamd(work_dir, max_bytes=max_bytes)
        try:
            clamd.start()
        except ClamdStartError as error:
            self.clamd_note = f"clamd did not start ({error}); scans fail closed"
            return None
        self._clamd = clamd
        self._stoppers.append(clamd.stop)
        threading.Thread(target=self._refresh_definitions, args=(clamd,), daemon=True).start()
        self.clamd_note = f"{clamd.address} (locally generated test signatures)"
        return str(clamd.address)

    def _refresh_definitions(self, clamd: Any) -> None:
        """Rebuild the local signature database now and then: scans refuse definitions that got old."""
        while not self._stopped.wait(DEFINITIONS_REFRESH_SECONDS):
            try:
                clamd.refresh_definitions()
            except OSError:
                log.warning("could not refresh the local clamd database", exc_info=True)

    # ------------------------------------------------------------ start
    def start(self) -> None:
        began = time.monotonic()
        options = self.options
        options.state_dir.mkdir(parents=True, exist_ok=True)
        template = load_template_cached(
            options.cache_dir / "template.json", options.template_path, options.region
        )
        parameters = template.parameter_values(options.parameters)
        # clamd accepts streams as long as the largest file the stack accepts (ClamAV caps them at 4 GiB).
        max_bytes = min(int(parameters.get("MaxFileBytes", 100 * 1024 * 1024)), 4 * 1024**3 - 1)
        from filepipe.local.services.guardduty.api import GuardDutyApi
        from filepipe.local.services.guardduty.protection import max_object_bytes

        malware_scan_max_bytes = max_object_bytes(os.environ)  # a bad value stops the start here
        guardduty = GuardDutyApi(PSEUDO_ACCOUNT_ID, options.region)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="startup")
        clamd_future: Future[str | None] = pool.submit(self._start_clamd, max_bytes)

        from filepipe.local import moto_core_patches, moto_patches
        from filepipe.local.services.awslambda import patches as lambda_patches
        from filepipe.local.services.dynamodb import patches as dynamodb_patches
        from filepipe.local.services.events import patches as events_patches
        from filepipe.local.services.s3 import patches as s3_patches
        from filepipe.local.services.ses import patches as ses_patches
        from filepipe.local.services.sqs import patches as sqs_patches
        from filepipe.local.services.stepfunctions import patches as stepfunctions_patches

        web_port, api_port, aws_port = options.ports
        moto_core_patches.configure_moto(aws_port, _managed_policy_arns(template))
        moto_patches.install_all(moto_core_patches.REQUEST_CACHES)
        moto_patches.install(lambda_patches.lambda_concurrency_quota, options.lambda_concurrency_quota)
        moto_patches.install(ses_patches.ses_sandbox, production_access=options.ses_production_access)
        moto_patches.install(stepfunctions_patches.keep_states_error_names)
        # Each item operation atomic, as DynamoDB's conditional writes are (moto's are not, across threads).
        moto_patches.install(dynamodb_patches.atomic_item_operations)
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from filepipe.local.enforcement.runtime import runtime_iam
        from filepipe.local.services.awslambda.runner import LambdaRunner

        # IAM is evaluated on every request (the bucket policies with it, not by moto's own check).
        moto_patches.install(s3_patches.leave_bucket_policies_to_iam)
        # Multipart parts are refused, listed and joined with their checksums as S3 does (moto ignores them).
        moto_patches.install(s3_patches.verify_part_checksums)
        self.iam = iam = runtime_iam(PSEUDO_ACCOUNT_ID, options.region, self._function_role)
        self.runner = LambdaRunner(
            {},
            region=options.region,
            endpoint_url=self.aws_endpoint,
            credentials=iam.function_credentials if iam else (ACCESS_KEY_ID, SECRET_ACCESS_KEY),
            log_sink=self.out,
            max_workers_per_function=options.max_workers_per_function,
            package_cache=options.cache_dir / "packages",
        )
        self.runner.start()
        self._stoppers.append(self.runner.stop)
        endpoint = AwsEndpoint(
            DomainDispatcherApplication(create_backend_app),
            self.runner,
            self._secret_for,
            local_routes={"outbox": self.outbox, "status": self.status},
            account=PSEUDO_ACCOUNT_ID,
            iam=iam.enforcer if iam else None,
            local_operations=guardduty,
        )
        self._endpoint_app = endpoint
        # The functions' SDK clients make a few dozen calls per file: they keep their connections.
        aws_server = _Server(options.host, aws_port, endpoint, moto_handler=True, keep_alive=True)
        aws_server.start()
        self._servers.append(aws_server)

        delivery = EventDelivery(
            self._senders(), self._dead_letter, acting=iam.deliveries.acting if iam else None
        )
        self._stoppers.append(delivery.stop)
        moto_patches.install(events_patches.deliver_rule_targets, delivery.submit)
        moto_patches.install(
            stepfunctions_patches.emit_execution_status_events,
            lambda event: events_patches.put_event(PSEUDO_ACCOUNT_ID, options.region, event),
        )
        moto_patches.install(stepfunctions_patches.redrive_executions)
        # The scan verdict function counts on both: its SendTaskFailure's cause is what the record step reads
        # the error's message from, and a token whose task is over (timed out, say) answers TaskTimedOut.
        moto_patches.install(stepfunctions_patches.callbacks_as_on_aws)
        moto_patches.install(
            stepfunctions_patches.share_interpreter_clients,
            self.aws_endpoint,
            self.runner,
            iam.state_machine if iam else None,
        )
        moto_patches.install(stepfunctions_patches.cache_definitions, options.cache_dir / "definitions")

        from filepipe.local.provision.provisioner import provision
        from filepipe.local.stack.model import LocalSite

        overrides = dict(options.parameters)
        clamd_address = clamd_future.result()
        pool.shutdown(wait=False)
        # A parameter is how the template lets a deployment point the scan step at a running clamd.
        if clamd_address and "ClamdAddress" not in overrides and "ClamdAddress" in template.parameters:
            overrides["ClamdAddress"] = clamd_address
        self.clamd_address = clamd_address
        self.stack = provision(
            self.client,
            template,
            options.stack_name,
            region=options.region,
            parameters=overrides,
            site=LocalSite(web_origin=self.web_url, api_origin=self.api_url),
            create_event_source_mappings=True,
            iam_enforced=iam is not None,
        )
        if iam is not None:
            stack = self.stack
            iam.check_roles(stack.functions, stack.event_source_mappings, stack.function_by_name)
        self._start_malware_protection(guardduty, malware_scan_max_bytes)
        self.runner.add_functions(self.stack.functions)
        sqs_patches.detach_queue_invocations(
            PSEUDO_ACCOUNT_ID,
            options.region,
            [m.queue_arn for m in self.stack.event_source_mappings.values()],
        )
        self._start_pollers()
        self._start_schedules(delivery)
        self._prepare_accounts()
        self._start_http(web_port, api_port)
        self._write_state()
        self.startup_seconds = time.monotonic() - began

    def _start_malware_protection(self, api: Any, max_object_bytes: int) -> None:
        """GuardDuty Malware Protection for the template's plans: nothing runs when it declares none.

        Stops the deployment where GuardDuty could not assume a plan's role; scans as a session of it.
        """
        from filepipe.local import moto_patches
        from filepipe.local.enforcement.sessions import assume_refusal
        from filepipe.local.services.events import patches as events_patches
        from filepipe.local.services.guardduty import patches as guardduty_patches
        from filepipe.local.services.guardduty.plans import MalwareProtectionPlan
        from filepipe.local.services.guardduty.protection import (
            SESSION_NAME,
            MalwareProtection,
            check_plan_roles,
            stack_plans,
        )

        region = self.options.region
        plans = stack_plans(PSEUDO_ACCOUNT_ID, region, self.stack.physical)
        if not plans:
            return
        iam = self.iam
        if iam is not None:
            check_plan_roles(plans, functools.partial(assume_refusal, iam.enforcer))

        def role_session(plan: MalwareProtectionPlan) -> Any:
            return iam.enforcer.identities.session(plan.role_arn, SESSION_NAME) if iam is not None else None

        protection = MalwareProtection(
            account=PSEUDO_ACCOUNT_ID,
            region=region,
            clients=self.client,
            publish=lambda event: events_patches.put_event(PSEUDO_ACCOUNT_ID, region, event),
            role_session=role_session,
            clamd_address=self.clamd_address,
            max_object_bytes=max_object_bytes,
        )
        protection.start()
        self._stoppers.append(protection.stop)
        self._stoppers.append(
            moto_patches.install(guardduty_patches.offer_created_objects, protection.object_created)
        )
        api.serve(protection.queue)
        buckets = ", ".join(sorted(plan.bucket for plan in plans.values()))
        scanner = "clamd" if self.clamd_address else "no clamd: every scan FAILED"
        self.malware_protection_note = f"GuardDuty Malware Protection for {buckets} ({scanner})"

    def _start_pollers(self) -> None:
        from filepipe.local.services.awslambda.mappings import QueuePoller

        for spec in self.stack.event_source_mappings.values():
            if not spec.enabled:
                continue
            function = self.stack.function_by_name(spec.function_name)
            acting = (
                functools.partial(self.iam.pollers.acting, function) if self.iam else contextlib.nullcontext
            )
            poller = QueuePoller(
                spec, self.client("sqs"), self.runner.invoke, self.options.region, acting=acting
            )
            poller.start()
            self._stoppers.append(poller.stop)

    def _start_schedules(self, delivery: EventDelivery) -> None:
        from filepipe.local.services.scheduler.clock import Scheduler

        scheduler = Scheduler(
            list(self.stack.schedules.values()), delivery.submit, PSEUDO_ACCOUNT_ID, self.options.region
        )
        scheduler.start()
        self._stoppers.append(scheduler.stop)

    def _prepare_accounts(self) -> None:
        """Verify the SES identities the operator named (the template's sender is not verified for them,
        as AWS does not verify it) and create the confirmed demo user."""
        for address in self.options.verified_emails:
            self.client("ses").verify_email_identity(EmailAddress=address)
        pool_id = self._user_pool_id()
        if pool_id:
            cognito = self.client("cognito-idp")
            cognito.admin_create_user(
                UserPoolId=pool_id,
                Username=DEMO_EMAIL,
                UserAttributes=[
                    {"Name": "email", "Value": DEMO_EMAIL},
                    {"Name": "email_verified", "Value": "true"},
                ],
                MessageAction="SUPPRESS",
            )
            cognito.admin_set_user_password(
                UserPoolId=pool_id, Username=DEMO_EMAIL, Password=DEMO_PASSWORD, Permanent=True
            )

    def _user_pool_id(self) -> str | None:
        pools = self.stack.template.of_type("AWS::Cognito::UserPool")
        return self.stack.physical.get(next(iter(pools))) if pools else None

    def config(self) -> dict[str, Any]:
        """What the web UI reads from /config.json: built from the stack's outputs, as a deploy builds it."""
        from filepipe.site import site_config

        return site_config(self.stack.outputs, self.options.region, cognito_endpoint=self.aws_endpoint + "/")

    def _start_http(self, web_port: int, api_port: int) -> None:
        from filepipe.local.services.apigateway.http_api import HttpApiFront
        from filepipe.local.services.cloudfront.web import SiteApp

        apis = list(self.stack.http_apis.values())
        if apis:
            if len(apis) > 1:
                log.warning("only the first HTTP API (%s) is served locally", apis[0].logical_id)
            front = HttpApiFront(
                apis[0],
                self.iam.api_invoke(self.runner.invoke) if self.iam else self.runner.invoke,
                account=PSEUDO_ACCOUNT_ID,
                region=self.options.region,
                aws_endpoint=self.aws_endpoint,
            )
            api_server = _Server(self.options.host, api_port, front, keep_alive=True)
            api_server.start()
            self._servers.append(api_server)
        from filepipe.local.console import ConsoleApi, with_console
        from filepipe.ops.target import Target

        target = Target(
            f"local runtime at {self.aws_endpoint}", self.client, self.stack.outputs, receive_wait_seconds=0
        )
        console = ConsoleApi(target, self.console_token, outbox=self.outbox, audit_stream=self.out)
        site = with_console(SiteApp(self.options.site_dir, self.config()), console)
        web_server = _Server(self.options.host, web_port, site)
        web_server.start()
        self._servers.append(web_server)

    def _write_state(self) -> None:
        write_state(
            self.options.state_dir,
            {
                "webUrl": self.web_url,
                "apiUrl": self.api_url,
                "awsEndpoint": self.aws_endpoint,
                "region": self.options.region,
                "stackName": self.options.stack_name,
                "credentials": {"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": SECRET_ACCESS_KEY},
                "demoUser": {"email": DEMO_EMAIL, "password": DEMO_PASSWORD},
                "physical": self.stack.physical,
                "outputs": self.stack.outputs,
                "console": {"url": self.console_url, "token": self.console_token},
            },
        )

    # ------------------------------------------------------------ event targets
    def _queue_url(self, queue_arn: str) -> str:
        """A queue's URL from its ARN, as moto writes it: EventBridge sends to the ARN and looks nothing up
        (a GetQueueUrl would be a request of its own, which the queue's policy does not let it make)."""
        _, _, _, _, account, name = queue_arn.split(":", 5)
        return f"{self.aws_endpoint}/{account}/{name}"

    def _senders(self) -> dict[str, Callable[[Any, str], None]]:
        def sqs(target: Any, payload: str) -> None:
            with _target_errors():
                url = self._queue_url(str(target["Arn"]))
                kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": payload}
                group = target.get("SqsParameters", {}).get("MessageGroupId")
                if group:
                    kwargs["MessageGroupId"] = group
                self.client("sqs").send_message(**kwargs)

        def states(target: Any, payload: str) -> None:
            with _target_errors():
                self.client("stepfunctions").start_execution(stateMachineArn=target["Arn"], input=payload)

        def function(target: Any, payload: str) -> None:
            from filepipe.local.services.awslambda.runner import FunctionNotFound

            try:
                self.runner.invoke_event(str(target["Arn"]), payload.encode())
            except FunctionNotFound as error:
                raise TargetError(
                    "ResourceNotFoundException", f"no function {target['Arn']}", retryable=False
                ) from error

        def bus(target: Any, payload: str) -> None:
            event = json.loads(payload)
            with _target_errors():
                self.client("events").put_events(
                    Entries=[
                        {
                            "Source": event.get("source", ""),
                            "DetailType": event.get("detail-type", ""),
                            "Detail": json.dumps(event.get("detail", {})),
                            "Resources": event.get("resources", []),
                            "EventBusName": target["Arn"],
                        }
                    ]
                )

        def log_group(target: Any, payload: str) -> None:
            group = str(target["Arn"]).split(":log-group:", 1)[1].removesuffix(":*")
            stream = f"events-{time.strftime('%Y%m%d')}"
            logs = self.client("logs")
            with _target_errors():
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    logs.create_log_stream(logGroupName=group, logStreamName=stream)
                logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=[{"timestamp": int(time.time() * 1000), "message": payload}],
                )

        return {"sqs": sqs, "states": states, "lambda": function, "events": bus, "logs": log_group}

    def _dead_letter(self, queue_arn: str, body: str, attributes: dict[str, str]) -> None:
        self.client("sqs").send_message(
            QueueUrl=self._queue_url(queue_arn),
            MessageBody=body,
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
            },
        )

    # ------------------------------------------------------------ local routes
    def outbox(self) -> list[dict[str, Any]]:
        from filepipe.local.services.ses.patches import sent_emails

        return sent_emails(PSEUDO_ACCOUNT_ID, self.options.region)

    def status(self) -> dict[str, Any]:
        pids = [os.getpid(), *(self.runner.pids() if self.runner else [])]
        if self._clamd is not None and self._clamd.pid is not None:
            pids.append(self._clamd.pid)
        return {
            "pids": pids,
            "startupSeconds": round(self.startup_seconds, 3),
            "functions": sorted(self.stack.functions) if self.stack else [],
            "warnings": self.stack.warnings if self.stack else [],
            "requests": self._endpoint_app.request_counts() if self._endpoint_app is not None else {},
            "invocations": self.runner.invocation_counts() if self.runner else {},
        }

    def _email_note(self) -> str:
        sender = self.stack.parameters.get("SenderEmail")
        if not sender:
            return "off (no SenderEmail parameter); owners learn outcomes from the web UI and FileProcessed"
        if self.options.ses_production_access:
            recipients = "SES production access: any recipient"
        else:
            recipients = "SES sandbox: only verified recipients get email (--ses-production-access leaves it)"
        if sender in self.options.verified_emails:
            return f"from {sender} (verified); {recipients}; `filepipe outbox` shows what was sent"
        refused = f"SES refuses to send until `filepipe ses verify {sender}`"
        return f"from {sender}, NOT verified: {refused}; {recipients}"

    def banner(self) -> str:
        lines = [
            f"filepipe local is ready ({self.startup_seconds:.2f} s)",
            f"  web:          {self.web_url}",
            f"  API:          {self.api_url}",
            f"  AWS endpoint: {self.aws_endpoint}  (region {self.options.region}; any credentials work)",
            f"  demo login:   {DEMO_EMAIL} / {DEMO_PASSWORD}",
            f"  console:      {self.console_url}  (operators; the token is in the address)",
            f"  clamd:        {self.clamd_note}",
            *([f"  scanning:     {self.malware_protection_note}"] if self.malware_protection_note else []),
            f"  email:        {self._email_note()}",
        ]
        if self.stack.warnings:
            lines.append("  not emulated locally (the template declares them; nothing else changes):")
            lines += [f"    - {warning}" for warning in self.stack.warnings]
        lines.append("Function logs follow, each line prefixed with its function. Ctrl-C stops everything.")
        return "\n".join(lines)

    # ------------------------------------------------------------ stop
    def stop(self) -> None:
        self._stopped.set()
        threads = [threading.Thread(target=server.stop, daemon=True) for server in self._servers]
        for thread in threads:
            thread.start()
        for stopper in reversed(self._stoppers):
            try:
                stopper()
            except Exception:
                log.exception("while stopping")
        for thread in threads:
            thread.join(timeout=1.0)
        remove_state(self.options.state_dir)


@contextlib.contextmanager
def _target_errors() -> Iterator[None]:
    """Turn a failed AWS call into the TargetError EventBridge would classify it as."""
    try:
        yield
    except TargetError:
        raise
    except Exception as error:
        response = getattr(error, "response", None)
        if not isinstance(response, dict):
            raise TargetError("InternalException", str(error), retryable=True) from error
        code = str(response.get("Error", {}).get("Code", "Unknown"))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        message = str(response.get("Error", {}).get("Message", error))
        raise TargetError(code, message, retryable=code in _THROTTLED or status >= 500) from error
