"""Continuous delivery: workflows pass actionlint and keep their promises; the deploy role fits the stack."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from samtranslator.yaml_helper import yaml_parse

from filepipe.template import ROOT, Resolver, Template
from gates import tool
from tests.iam import RolePolicy, _as_list

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT_CONFIG = ROOT / ".github" / "actionlint.yaml"
BOOTSTRAP = ROOT / "deploy" / "bootstrap.yaml"
BIN = Path(sys.prefix) / "bin"
PIPELINES = ("backend", "frontend")
DEPLOY_PERMISSIONS = {"contents": "read", "id-token": "write"}

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STAGING = "filepipe-staging"
PRODUCTION = "filepipe-prod"
# IAM's quota on a managed policy, whitespace not counted, and on managed policies per role (default).
MANAGED_POLICY_MAX_CHARS = 6144
MANAGED_POLICIES_PER_ROLE = 10


def run_actionlint(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "actionlint"), "-no-color", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def workflow(name: str) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    # YAML 1.1 reads the key `on` as the boolean true.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


# ------------------------------------------------------------------ actionlint


def test_workflows_pass_actionlint() -> None:
    result = run_actionlint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in WORKFLOWS.iterdir()) == [
        "backend.yml",
        "deploy.yml",
        "frontend.yml",
        "test.yml",
    ]


# A step with one mistake each, and what actionlint says about it.
BROKEN_STEPS = {
    "bad expression": ('run: echo "${{ github.event.pull_request.title.nope( }}"', "[expression]"),
    "action by tag": ("uses: actions/checkout@v7", "[require-commit-hash]"),
    # No stored keys: the configuration allows no secret at all.
    "stored key": (
        "run: aws s3 ls\n        env:\n          AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_KEY }}",
        "no secret is allowed",
    ),
    "misspelled variable": (
        'run: echo "${{ vars.FILEPIPE_STAK }}"',
        'undefined configuration variable "filepipe_stak"',
    ),
}


@pytest.mark.parametrize("mistake", sorted(BROKEN_STEPS))
def test_actionlint_refuses_a_broken_workflow(tmp_path: Path, mistake: str) -> None:
    step, message = BROKEN_STEPS[mistake]
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ACTIONLINT_CONFIG, tmp_path / ".github" / "actionlint.yaml")
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.write_text(
        "on: push\n"
        "permissions: {}\n"
        "jobs:\n"
        "  job:\n"
        "    runs-on: ubuntu-24.04\n"
        "    timeout-minutes: 5\n"
        "    steps:\n"
        f"      - {step}\n"
    )
    result = run_actionlint(
        "-config-file", str(tmp_path / ".github" / "actionlint.yaml"), str(broken), cwd=tmp_path
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stdout


# ------------------------------------------------------------------ what the pipelines promise


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipeline_tests_then_staging_with_the_journey_then_production(pipeline: str) -> None:
    jobs = workflow(pipeline)["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/test.yml"
    for stage, after in (("staging", "test"), ("production", "staging")):
        job = jobs[stage]
        assert job["needs"] == after
        assert job["uses"] == "./.github/workflows/deploy.yml"
        assert job["permissions"] == DEPLOY_PERMISSIONS
        assert job["with"]["part"] == pipeline
        assert job["with"]["environment"] == stage
    assert jobs["staging"]["with"]["journey"] is True
    assert "permissions" not in jobs["test"]


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipeline_runs_on_a_push_to_main_or_alone(pipeline: str) -> None:
    spec = workflow(pipeline)
    assert spec["on"]["push"]["branches"] == ["main"]
    assert spec["on"]["workflow_dispatch"]["inputs"]["production"]["type"] == "boolean"
    # Least privilege by default: only the deploy jobs ask for an OIDC token.
    assert spec["permissions"] == {"contents": "read"}


def test_pipelines_share_one_ordered_queue() -> None:
    """Two deploys of a stack never overlap, and a waiting run is queued, not replaced by the next."""
    queues = [workflow(pipeline)["concurrency"] for pipeline in PIPELINES]
    assert queues[0] == queues[1]
    assert queues[0]["cancel-in-progress"] is False
    assert queues[0]["queue"] == "max"


def _github_glob(pattern: str) -> re.Pattern[str]:
    """GitHub's path filter globs: `**` any characters, `*` any but `/`."""
    if re.search(r"[?+\[\]!]", pattern):
        raise ValueError(f"this test does not read the glob {pattern!r}")
    parts = (
        ".*" if part == "**" else re.escape(part).replace(r"\*", "[^/]*")
        for part in re.split(r"(\*\*)", pattern)
    )
    return re.compile("".join(parts))


def triggers(pipeline: str, changed: Iterable[str]) -> bool:
    """Whether a push to main that changes these files starts the pipeline."""
    push = workflow(pipeline)["on"]["push"]
    changed = list(changed)
    if "paths" in push:
        return any(_github_glob(p).fullmatch(path) for p in push["paths"] for path in changed)
    ignored = [_github_glob(p) for p in push.get("paths-ignore", [])]
    return any(not any(glob.fullmatch(path) for glob in ignored) for path in changed)


@pytest.mark.parametrize(
    ("changed", "backend", "frontend"),
    [
        (["frontend/app.js", "frontend/index.html"], False, True),
        (["functions/api/handler.py"], True, False),
        (["template.yaml", "statemachines/process_upload.asl.json"], True, False),
        (["filepipe/site.py"], True, True),
        (["functions/api/handler.py", "frontend/app.js"], True, True),
        (["README.md", "docs/operations.md"], False, False),
    ],
)
def test_path_filters_deploy_only_what_changed(changed: list[str], backend: bool, frontend: bool) -> None:
    assert triggers("backend", changed) is backend
    assert triggers("frontend", changed) is frontend


def deploy_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow("deploy")["jobs"]["deploy"]["steps"]
    return steps


def test_deploy_uses_the_makefile_and_the_environments_role() -> None:
    job = workflow("deploy")["jobs"]["deploy"]
    assert job["environment"]["name"] == "${{ inputs.environment }}"
    runs = {step.get("if"): step.get("run", "") for step in deploy_steps() if "run" in step}
    assert runs["inputs.part == 'backend'"].startswith("make deploy ")
    # The image functions' repositories are SAM's to create (its companion stack), in either Scanner mode.
    assert "--resolve-image-repos" in (ROOT / "Makefile").read_text()
    assert "SAM_BUILD_FLAGS=--use-container" in runs["inputs.part == 'backend'"]
    assert "python -m filepipe.site " in runs["inputs.part == 'frontend'"]
    assert runs["inputs.journey"].startswith("make test-aws ")
    [credentials] = [s for s in deploy_steps() if s.get("uses", "").startswith("aws-actions/configure-aws-")]
    assert set(credentials["with"]) == {
        "role-to-assume",
        "aws-region",
        "role-session-name",
        "role-duration-seconds",
    }
    assert credentials["with"]["role-to-assume"] == "${{ vars.FILEPIPE_DEPLOY_ROLE_ARN }}"


def test_no_workflow_holds_a_long_lived_key() -> None:
    for path in WORKFLOWS.iterdir():
        text = path.read_text()
        assert "aws-access-key-id" not in text, path.name
        assert "secrets." not in text, path.name


# ------------------------------------------------------------------ the bootstrap template


def test_bootstrap_passes_cfn_lint() -> None:
    result = subprocess.run(
        [str(BIN / "cfn-lint"), str(BOOTSTRAP)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def bootstrap(stack: str, environment: str, oidc_provider: str = "") -> dict[str, Any]:
    """The bootstrap template's resources with every intrinsic resolved, as CloudFormation deploys them."""
    source = yaml_parse(BOOTSTRAP.read_text())
    resolver = Resolver(
        parameters={
            "GitHubRepository": "octo-org/filepipe",
            "GitHubEnvironment": environment,
            "StackName": stack,
            "OidcProviderArn": oidc_provider,
        },
        pseudo={
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": f"filepipe-cd-{environment}",
        },
        ref=lambda name: (
            f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
            if name == "GitHubOidcProvider"
            else f"arn:aws:iam::{ACCOUNT}:policy/{name}"
        ),
        get_att=lambda logical, attribute: f"{logical}.{attribute}",
        conditions=source["Conditions"],
    )
    return {
        name: resolver(resource)
        for name, resource in source["Resources"].items()
        if "Condition" not in resource or resolver.condition(resource["Condition"])
    }


def deploy_role(stack: str) -> RolePolicy:
    resources = bootstrap(stack, "staging")
    attached = resources["DeployRole"]["Properties"]["ManagedPolicyArns"]
    statements = [
        statement
        for arn in attached
        for statement in resources[arn.rsplit("/", 1)[-1]]["Properties"]["PolicyDocument"]["Statement"]
    ]
    return RolePolicy("DeployRole", tuple(statements))


def test_only_this_repository_and_environment_assume_the_role() -> None:
    trust = bootstrap(STAGING, "staging")["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    # Exact matches only: a StringLike with a wildcard would let other branches or repositories in.
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:octo-org/filepipe:environment:staging",
        }
    }


def test_a_second_environment_reuses_the_accounts_oidc_provider() -> None:
    """An account has one provider per URL: the first bootstrap creates it, the next ones name it."""
    existing = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    assert "GitHubOidcProvider" in bootstrap(STAGING, "staging")
    resources = bootstrap(PRODUCTION, "production", oidc_provider=existing)
    assert "GitHubOidcProvider" not in resources
    [statement] = resources["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"]["Federated"] == existing
    assert statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
        "repo:octo-org/filepipe:environment:production"
    )


def test_policies_fit_iams_quotas() -> None:
    # The longest values each part can take: partition, region, account, a 20-character stack name.
    source = yaml_parse(BOOTSTRAP.read_text())
    resolver = Resolver(
        parameters={
            "GitHubRepository": "o/r",
            "GitHubEnvironment": "e",
            "StackName": "s" * 20,
            "OidcProviderArn": "",
        },
        pseudo={"AWS::Partition": "aws-us-gov", "AWS::Region": "ap-southeast-7", "AWS::AccountId": ACCOUNT},
        ref=lambda name: name,
        get_att=lambda logical, attribute: logical,
        conditions=source["Conditions"],
    )
    policies = {
        name: resolver(resource["Properties"]["PolicyDocument"])
        for name, resource in source["Resources"].items()
        if resource["Type"] == "AWS::IAM::ManagedPolicy"
    }
    for name, document in policies.items():
        size = len(re.sub(r"\s", "", json.dumps(document)))
        assert size <= MANAGED_POLICY_MAX_CHARS, f"{name}: {size} characters"
    assert (
        len(source["Resources"]["DeployRole"]["Properties"]["ManagedPolicyArns"]) <= MANAGED_POLICIES_PER_ROLE
    )


def arn(service: str, resource: str, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("cloudformation:ExecuteChangeSet", arn("cloudformation", f"stack/{PRODUCTION}/0f1e")),
        ("lambda:UpdateFunctionCode", arn("lambda", f"function:{PRODUCTION}-ApiFunction-AbCdEf")),
        ("iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/{PRODUCTION}-ApiFunctionRole-AbCdEf"),
        ("s3:PutBucketPolicy", f"arn:aws:s3:::{PRODUCTION}-ingestbucket-abcdef"),
        ("s3:PutObject", f"arn:aws:s3:::{PRODUCTION}-sitebucket-abcdef/index.html"),
        # User data: no object of the stack's own buckets but the site's, no item of its table.
        ("s3:GetObject", f"arn:aws:s3:::{STAGING}-filesbucket-abcdef/users/u/f"),
        ("s3:PutObject", f"arn:aws:s3:::{STAGING}-ingestbucket-abcdef/uploads/u/f"),
        ("s3:GetObjectVersion", f"arn:aws:s3:::{STAGING}-quarantinebucket-abcdef/users/u/f"),
        ("dynamodb:Scan", arn("dynamodb", f"table/{STAGING}-FilesTable-AbCdEf")),
        ("dynamodb:GetItem", arn("dynamodb", f"table/{STAGING}-FilesTable-AbCdEf")),
        ("dynamodb:PutItem", arn("dynamodb", f"table/{STAGING}-FilesTable-AbCdEf")),
        # Nothing outside the stack's names.
        ("iam:CreateRole", f"arn:aws:iam::{ACCOUNT}:role/Administrators"),
        ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/{STAGING}-someone"),
        ("lambda:InvokeFunction", arn("lambda", "function:billing-export")),
        ("cloudformation:ExecuteChangeSet", arn("cloudformation", "stack/other-app/0f1e")),
    ],
)
def test_the_staging_role_refuses(action: str, resource: str) -> None:
    assert not deploy_role(STAGING).allows(action, resource)


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("cloudformation:CreateChangeSet", arn("cloudformation", f"stack/{STAGING}/0f1e")),
        (
            "cloudformation:CreateChangeSet",
            f"arn:aws:cloudformation:{REGION}:aws:transform/Serverless-2016-10-31",
        ),
        ("cloudformation:ExecuteChangeSet", arn("cloudformation", "stack/aws-sam-cli-managed-default/0f1e")),
        ("s3:PutObject", "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-abc/filepipe/0a1b"),
        ("s3:PutObject", f"arn:aws:s3:::{STAGING}-sitebucket-abcdef/index.html"),
        ("s3:DeleteObject", f"arn:aws:s3:::{STAGING}-sitebucket-abcdef/old.js"),
        ("s3:ListBucket", f"arn:aws:s3:::{STAGING}-sitebucket-abcdef"),
        ("cloudfront:CreateInvalidation", f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2ABCDEF"),
        ("lambda:InvokeFunction", arn("lambda", f"function:{STAGING}-DefinitionsUpdateFunction-AbCdEf")),
        ("cloudformation:DescribeStacks", arn("cloudformation", f"stack/{STAGING}/0f1e")),
        ("cognito-idp:AdminCreateUser", arn("cognito-idp", "userpool/eu-west-1_AbCdEf")),
        ("cognito-idp:AdminDeleteUser", arn("cognito-idp", "userpool/eu-west-1_AbCdEf")),
        ("lambda:GetAccountSettings", "*"),
    ],
)
def test_the_staging_role_deploys_publishes_and_runs_the_journey(action: str, resource: str) -> None:
    assert deploy_role(STAGING).allows(action, resource)


# ------------------------------------------------------------------ the role against template.yaml

# The IAM prefix of each service whose resources template.yaml declares.
SERVICE_PREFIXES = {
    "ApiGatewayV2": "apigateway",
    "CloudFront": "cloudfront",
    "CloudWatch": "cloudwatch",
    "Cognito": "cognito-idp",
    "DynamoDB": "dynamodb",
    "Events": "events",
    "GuardDuty": "guardduty",
    "IAM": "iam",
    "KMS": "kms",
    "Lambda": "lambda",
    "Logs": "logs",
    "S3": "s3",
    "SES": "ses",
    "SNS": "sns",
    "SQS": "sqs",
    "Scheduler": "scheduler",
    "StepFunctions": "states",
}

# Resources whose names CloudFormation makes from the stack's (unless the template names them): what
# creates one, its ARN, and the property that would name it.
NAMED = {
    "AWS::Lambda::Function": (
        "lambda:CreateFunction",
        "arn:aws:lambda:{region}:{account}:function:{name}",
        "FunctionName",
    ),
    "AWS::IAM::Role": ("iam:CreateRole", "arn:aws:iam::{account}:role/{name}", "RoleName"),
    "AWS::S3::Bucket": ("s3:CreateBucket", "arn:aws:s3:::{name}", "BucketName"),
    "AWS::DynamoDB::Table": (
        "dynamodb:CreateTable",
        "arn:aws:dynamodb:{region}:{account}:table/{name}",
        "TableName",
    ),
    "AWS::SQS::Queue": ("sqs:CreateQueue", "arn:aws:sqs:{region}:{account}:{name}", "QueueName"),
    "AWS::SNS::Topic": ("sns:CreateTopic", "arn:aws:sns:{region}:{account}:{name}", "TopicName"),
    "AWS::Events::Rule": ("events:PutRule", "arn:aws:events:{region}:{account}:rule/{name}", "Name"),
    "AWS::Events::EventBus": (
        "events:CreateEventBus",
        "arn:aws:events:{region}:{account}:event-bus/{name}",
        "Name",
    ),
    "AWS::StepFunctions::StateMachine": (
        "states:CreateStateMachine",
        "arn:aws:states:{region}:{account}:stateMachine:{name}",
        "StateMachineName",
    ),
    "AWS::Logs::LogGroup": (
        "logs:CreateLogGroup",
        "arn:aws:logs:{region}:{account}:log-group:{name}",
        "LogGroupName",
    ),
    "AWS::CloudWatch::Alarm": (
        "cloudwatch:PutMetricAlarm",
        "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
        "AlarmName",
    ),
    "AWS::CloudWatch::CompositeAlarm": (
        "cloudwatch:PutCompositeAlarm",
        "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
        "AlarmName",
    ),
    "AWS::CloudWatch::Dashboard": (
        "cloudwatch:PutDashboard",
        "arn:aws:cloudwatch::{account}:dashboard/{name}",
        "DashboardName",
    ),
    "AWS::Scheduler::Schedule": (
        "scheduler:CreateSchedule",
        "arn:aws:scheduler:{region}:{account}:schedule/default/{name}",
        "Name",
    ),
    "AWS::Lambda::LayerVersion": (
        "lambda:PublishLayerVersion",
        "arn:aws:lambda:{region}:{account}:layer:{name}",
        "LayerName",
    ),
}


def generated_name(resource_type: str, logical_id: str, stack: str) -> str:
    """The name CloudFormation gives a resource the template does not name: stack, logical id, suffix."""
    name = f"{stack}-{logical_id}-1A2B3C4D5E6F"
    return name.lower() if resource_type == "AWS::S3::Bucket" else name


def physical_names(template: Template, stack: str) -> dict[str, str]:
    resolver = Resolver(
        parameters=template.parameter_values({"SenderEmail": "sender@example.com"}),
        pseudo={
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": stack,
            "AWS::StackId": arn("cloudformation", f"stack/{stack}/0f1e2d3c-aaaa-bbbb-cccc-111122223333"),
            "AWS::URLSuffix": "amazonaws.com",
        },
        ref=lambda name: generated_name(template.resources[name]["Type"], name, stack),
        get_att=lambda logical, attribute: generated_name(
            template.resources[logical]["Type"], logical, stack
        ),
        conditions=template.conditions,
    )
    names = {}
    for logical_id, resource in template.resources.items():
        if resource["Type"] in NAMED:
            name_property = NAMED[resource["Type"]][2]
            given = resource.get("Properties", {}).get(name_property)
            names[logical_id] = (
                str(resolver(given)) if given else generated_name(resource["Type"], logical_id, stack)
            )
    return names


def test_the_role_may_create_every_named_resource_of_the_stack(template: Template) -> None:
    role = deploy_role(STAGING)
    refused = []
    for logical_id, name in physical_names(template, STAGING).items():
        action, arn_format, _ = NAMED[template.resources[logical_id]["Type"]]
        resource = arn_format.format(region=REGION, account=ACCOUNT, name=name)
        if not role.allows(action, resource):
            refused.append(f"{logical_id}: {action} on {resource}")
    assert not refused, "deploy/bootstrap.yaml does not let the deploy role create:\n" + "\n".join(refused)


def test_the_role_reaches_every_service_of_the_stack(template: Template) -> None:
    role = deploy_role(STAGING)
    granted = {str(action).split(":")[0] for s in role.statements for action in _as_list(s["Action"])}
    services = {resource["Type"].split("::")[1] for resource in template.resources.values()}
    unknown = services - SERVICE_PREFIXES.keys()
    assert not unknown, (
        f"template.yaml uses {sorted(unknown)}: grant the deploy role its rights and map it here"
    )
    assert {SERVICE_PREFIXES[service] for service in services} <= granted


def template_roles(template: Template) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template.resources.values() if r["Type"] == "AWS::IAM::Role"]


def test_the_role_attaches_only_the_managed_policies_the_stack_uses(template: Template) -> None:
    role = deploy_role(STAGING)
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{STAGING}-ApiFunctionRole-AbCdEf"
    used = {
        str(policy).replace("${AWS::Partition}", "aws")
        for properties in template_roles(template)
        for policy in properties.get("ManagedPolicyArns", [])
    }
    assert used
    for policy in used:
        assert role.allows("iam:AttachRolePolicy", role_arn, {"iam:policyarn": policy}), policy
    administrator = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert not role.allows("iam:AttachRolePolicy", role_arn, {"iam:policyarn": administrator})


def test_the_role_passes_the_stacks_roles_only_to_their_services(template: Template) -> None:
    role = deploy_role(STAGING)
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{STAGING}-ProcessUploadStateMachineRole-AbCdEf"
    services = {
        str(service)
        for properties in template_roles(template)
        for statement in properties["AssumeRolePolicyDocument"]["Statement"]
        for service in _as_list(statement["Principal"].get("Service", []))
    }
    assert services
    for service in services:
        assert role.allows("iam:PassRole", role_arn, {"iam:passedtoservice": service}), service
    assert not role.allows("iam:PassRole", role_arn, {"iam:passedtoservice": "ec2.amazonaws.com"})


# ------------------------------------------------------------------ the role against `sam deploy`'s images

# How the pinned SAM CLI names the companion stack of a stack and the ECR repository of one of its functions.
SAM_NAMES = """
import json, sys
from samcli.lib.bootstrap.companion_stack.data_types import CompanionStack, ECRRepo
stack = CompanionStack(sys.argv[1])
print(json.dumps([stack.stack_name, *(ECRRepo(stack, f).physical_id for f in sys.argv[2:])]))
"""


def image_functions(template: Template) -> list[str]:
    return sorted(
        name
        for name, resource in template.source["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
        and resource["Properties"].get("PackageType") == "Image"
    )


def sam_names(stack: str, functions: list[str]) -> tuple[str, list[str]]:
    """The companion stack's name and each function's repository, as `--resolve-image-repos` names them."""
    result = subprocess.run(
        [str(tool("sam", "python")), "-c", SAM_NAMES, stack, *functions],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    companion, *repositories = json.loads(result.stdout)
    return companion, repositories


# What SAM does with the companion stack (samcli/lib/bootstrap/companion_stack/companion_stack_manager.py).
COMPANION_STACK_ACTIONS = (
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:DeleteStack",
    "cloudformation:DescribeStacks",
    "cloudformation:ListStackResources",
)
# AWS::ECR::Repository's handlers (its CloudFormation resource schema, KMS left out: no key is set), SAM's
# DeleteRepository of a repository no function uses any more, and a push (Amazon ECR user guide).
REPOSITORY_ACTIONS = (
    "ecr:CreateRepository",
    "ecr:PutLifecyclePolicy",
    "ecr:SetRepositoryPolicy",
    "ecr:TagResource",
    "ecr:DescribeRepositories",
    "ecr:GetLifecyclePolicy",
    "ecr:GetRepositoryPolicy",
    "ecr:ListTagsForResource",
    "ecr:UntagResource",
    "ecr:DeleteLifecyclePolicy",
    "ecr:DeleteRepositoryPolicy",
    "ecr:PutImageScanningConfiguration",
    "ecr:PutImageTagMutability",
    "ecr:DeleteRepository",
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchGetImage",
)


@pytest.mark.parametrize("stack", [STAGING, "filepipe"])
def test_the_role_keeps_the_image_functions_repositories_and_pushes_their_images(
    template: Template, stack: str
) -> None:
    functions = image_functions(template)
    assert functions, "template.yaml has no image function: the role needs no ECR rights then"
    role = deploy_role(stack)
    companion, repositories = sam_names(stack, functions)
    refused = [
        f"{action} on {companion}"
        for action in COMPANION_STACK_ACTIONS
        if not role.allows(action, arn("cloudformation", f"stack/{companion}/0f1e"))
    ]
    refused += [
        f"{action} on {repository}"
        for repository in repositories
        for action in REPOSITORY_ACTIONS
        if not role.allows(action, arn("ecr", f"repository/{repository}"))
    ]
    assert not refused, "deploy/bootstrap.yaml does not let the deploy role:\n" + "\n".join(refused)
    assert role.allows("ecr:GetAuthorizationToken", "*")


def test_the_role_reaches_no_other_stacks_images() -> None:
    role = deploy_role(STAGING)
    scan = "ScanFunction"
    other_companion, [other_repository] = sam_names(PRODUCTION, [scan])
    # A stack whose name starts with the role's stack's, and so do its names without hyphens.
    longer_companion, [longer_repository] = sam_names(f"{STAGING}-2", [scan])
    for companion in (other_companion, longer_companion, "other-app-0a1b2c3d-CompanionStack"):
        assert not role.allows("cloudformation:DeleteStack", arn("cloudformation", f"stack/{companion}/0f1e"))
    for repository in (other_repository, longer_repository, "billing/exporter"):
        for action in (
            "ecr:PutImage",
            "ecr:DeleteRepository",
            "ecr:SetRepositoryPolicy",
            "ecr:BatchGetImage",
        ):
            assert not role.allows(action, arn("ecr", f"repository/{repository}")), (action, repository)
