"""API Gateway resources: HTTP APIs from their OpenAPI body (routes, JWT authorizers, CORS) and stages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from filepipe.local.stack.context import Created, Placeholder, Properties, Provisioning, ServiceHandlers
from filepipe.local.stack.model import HttpApiSpec, HttpRoute, JwtAuthorizerSpec
from filepipe.local.stack.tags import tag_map

# API Gateway quotas for HTTP APIs: an integration times out after at most 30 seconds (its
# timeoutInMillis, 50 ms to 30,000 ms); the caller then gets 503 while the function runs on.
MIN_INTEGRATION_TIMEOUT_MS = 50
MAX_INTEGRATION_TIMEOUT_MS = 30_000

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::ApiGatewayV2::Api")
def create_http_api(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    if "Body" not in props:
        provisioning.warn("HTTP APIs without an OpenAPI Body are not emulated locally", logical)
        return provisioning.name(logical), Placeholder(provisioning.name(logical))
    api = provisioning.client("apigatewayv2")
    body = dict(props["Body"])
    name = str(body.get("info", {}).get("title") or props.get("Name") or logical)
    kwargs: dict[str, Any] = {"Name": name, "ProtocolType": "HTTP"}
    cors = _http_api_cors(body.get("x-amazon-apigateway-cors"))
    if cors:
        kwargs["CorsConfiguration"] = cors
    tags = {t["name"]: t.get("x-amazon-apigateway-tag-value", "") for t in body.get("tags", [])}
    if "Tags" in props:
        tags.update(props["Tags"] if isinstance(props["Tags"], dict) else tag_map(props["Tags"]))
    if tags:
        kwargs["Tags"] = tags
    if "DisableExecuteApiEndpoint" in props:
        kwargs["DisableExecuteApiEndpoint"] = bool(props["DisableExecuteApiEndpoint"])
    props.get("FailOnWarnings")
    api_id = api.create_api(**kwargs)["ApiId"]
    spec = HttpApiSpec(logical_id=logical, api_id=api_id, name=name, cors=cors or None)

    schemes = body.get("components", {}).get("securitySchemes", {})
    authorizer_ids: dict[str, str] = {}
    for scheme_name, scheme in schemes.items():
        authorizer = scheme.get("x-amazon-apigateway-authorizer", {})
        if authorizer.get("type") != "jwt":
            provisioning.warn(
                f"HTTP API authorizers of type {authorizer.get('type')!r} are not emulated locally",
                logical,
            )
            continue
        jwt_config = authorizer["jwtConfiguration"]
        identity_source = authorizer.get("identitySource", "$request.header.Authorization")
        audiences = tuple(str(a) for a in jwt_config.get("audience", []))
        authorizer_ids[scheme_name] = api.create_authorizer(
            ApiId=api_id,
            Name=scheme_name,
            AuthorizerType="JWT",
            IdentitySource=[identity_source],
            JwtConfiguration={"Audience": list(audiences), "Issuer": jwt_config["issuer"]},
        )["AuthorizerId"]
        spec.authorizers[scheme_name] = JwtAuthorizerSpec(
            name=scheme_name,
            issuer=jwt_config["issuer"],
            audiences=audiences,
            identity_source=identity_source,
        )

    integration_ids: dict[tuple[str, str, int], str] = {}
    for path, methods in body.get("paths", {}).items():
        for method, operation in methods.items():
            integration = operation.get("x-amazon-apigateway-integration", {})
            function_arn = _integration_function(integration)
            if function_arn is None or integration.get("type", "aws_proxy").lower() != "aws_proxy":
                provisioning.warn(
                    "HTTP API integrations other than Lambda proxy are not emulated locally", logical
                )
                continue
            version = str(integration.get("payloadFormatVersion", "2.0"))
            timeout_ms = int(integration.get("timeoutInMillis", MAX_INTEGRATION_TIMEOUT_MS))
            if not MIN_INTEGRATION_TIMEOUT_MS <= timeout_ms <= MAX_INTEGRATION_TIMEOUT_MS:
                limits = f"{MIN_INTEGRATION_TIMEOUT_MS} and {MAX_INTEGRATION_TIMEOUT_MS} ms"
                raise ValueError(
                    f"{logical}: {method.upper()} {path}: timeoutInMillis {timeout_ms}: "
                    f"an HTTP API integration's timeout must be between {limits}"
                )
            key = (function_arn, version, timeout_ms)
            if key not in integration_ids:
                integration_ids[key] = api.create_integration(
                    ApiId=api_id,
                    IntegrationType="AWS_PROXY",
                    IntegrationUri=function_arn,
                    IntegrationMethod="POST",
                    PayloadFormatVersion=version,
                    TimeoutInMillis=timeout_ms,
                )["IntegrationId"]
            authorizer_name, scopes = _route_security(operation.get("security"), body.get("security"))
            route = HttpRoute(
                method="ANY" if method.lower() == "x-amazon-apigateway-any-method" else method.upper(),
                path="$default" if path == "/$default" else path,
                function_arn=function_arn,
                payload_format_version=version,
                authorizer=authorizer_name if authorizer_name in spec.authorizers else None,
                scopes=scopes,
                timeout_ms=timeout_ms,
            )
            route_kwargs: dict[str, Any] = {
                "ApiId": api_id,
                "RouteKey": route.route_key,
                "Target": f"integrations/{integration_ids[key]}",
                "AuthorizationType": "JWT" if route.authorizer else "NONE",
            }
            if route.authorizer:
                route_kwargs["AuthorizerId"] = authorizer_ids[route.authorizer]
                if scopes:
                    route_kwargs["AuthorizationScopes"] = list(scopes)
            api.create_route(**route_kwargs)
            spec.routes.append(route)
    unknown = sorted(
        k for k in body if k.startswith("x-amazon-apigateway-") and k != "x-amazon-apigateway-cors"
    )
    for extension in unknown:
        provisioning.warn(f"HTTP API OpenAPI extension {extension} is not emulated locally", logical)
    provisioning.stack.http_apis[logical] = spec
    endpoint = f"https://{api_id}.execute-api.{provisioning.stack.region}.amazonaws.com"
    if provisioning.site is not None:
        provisioning.serve_locally(endpoint, provisioning.site.api_origin)
        endpoint = provisioning.site.api_origin
    return api_id, {"ApiId": api_id, "ApiEndpoint": endpoint}


@HANDLERS.register("AWS::ApiGatewayV2::Stage")
def create_http_api_stage(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    api_id = props["ApiId"]
    stage_name = props["StageName"]
    kwargs: dict[str, Any] = {
        "ApiId": api_id,
        "StageName": stage_name,
        "AutoDeploy": bool(props.get("AutoDeploy", False)),
    }
    variables = {k: str(v) for k, v in props.get("StageVariables", {}).items()}
    if variables:
        kwargs["StageVariables"] = variables
    if "Tags" in props:
        kwargs["Tags"] = props["Tags"] if isinstance(props["Tags"], dict) else tag_map(props["Tags"])
    settings = props.get("DefaultRouteSettings")
    if settings:
        kwargs["DefaultRouteSettings"] = settings
        if "ThrottlingBurstLimit" in settings or "ThrottlingRateLimit" in settings:
            provisioning.warn("HTTP API stage throttling is not enforced locally", logical)
    if "AccessLogSettings" in props:
        provisioning.warn("HTTP API access logs are not written locally", logical)
    provisioning.client("apigatewayv2").create_stage(**kwargs)
    for spec in provisioning.stack.http_apis.values():
        if spec.api_id == api_id:
            spec.stages[stage_name] = variables
    return stage_name, {}


def _http_api_cors(cors: dict[str, Any] | None) -> dict[str, Any]:
    if not cors:
        return {}
    names = {
        "allowOrigins": "AllowOrigins",
        "allowHeaders": "AllowHeaders",
        "allowMethods": "AllowMethods",
        "exposeHeaders": "ExposeHeaders",
        "maxAge": "MaxAge",
        "allowCredentials": "AllowCredentials",
    }
    converted = {names[key]: value for key, value in cors.items() if key in names}
    if "MaxAge" in converted:
        converted["MaxAge"] = int(converted["MaxAge"])
    return converted


def _integration_function(integration: dict[str, Any]) -> str | None:
    uri = str(integration.get("uri", ""))
    if ":lambda:path/2015-03-31/functions/" in uri:
        return uri.split("/functions/", 1)[1].removesuffix("/invocations")
    if uri.startswith("arn:") and ":lambda:" in uri and ":function:" in uri:
        return uri
    return None


def _route_security(
    operation: Iterable[dict[str, Any]] | None, default: Iterable[dict[str, Any]] | None
) -> tuple[str | None, tuple[str, ...]]:
    requirements = list(operation if operation is not None else default or [])
    for requirement in requirements:
        for name, scopes in requirement.items():
            if name == "NONE":
                return None, ()
            return name, tuple(scopes or ())
    return None, ()
