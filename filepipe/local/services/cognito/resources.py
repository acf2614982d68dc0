"""Cognito resources: user pools and their app clients."""

from __future__ import annotations

from typing import Any

from filepipe.local.stack.context import Created, Properties, Provisioning, ServiceHandlers

HANDLERS = ServiceHandlers()


@HANDLERS.register("AWS::Cognito::UserPool")
def create_user_pool(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    kwargs: dict[str, Any] = {
        "PoolName": props.get("UserPoolName") or provisioning.name(logical, max_length=128)
    }
    for key in (
        "UsernameAttributes",
        "AliasAttributes",
        "AutoVerifiedAttributes",
        "Policies",
        "AccountRecoverySetting",
        "AdminCreateUserConfig",
        "MfaConfiguration",
        "UsernameConfiguration",
        "VerificationMessageTemplate",
        "EmailConfiguration",
        "DeletionProtection",
        "UserPoolTags",
    ):
        if key in props:
            kwargs[key] = props[key]
    if "Schema" in props:
        kwargs["Schema"] = [{"AttributeDataType": "String", **attribute} for attribute in props["Schema"]]
    pool = provisioning.client("cognito-idp").create_user_pool(**kwargs)["UserPool"]
    return pool["Id"], {
        "Arn": pool["Arn"],
        "ProviderName": f"cognito-idp.{provisioning.stack.region}.amazonaws.com/{pool['Id']}",
        "ProviderURL": f"https://cognito-idp.{provisioning.stack.region}.amazonaws.com/{pool['Id']}",
    }


@HANDLERS.register("AWS::Cognito::UserPoolClient")
def create_user_pool_client(provisioning: Provisioning, logical: str, props: Properties) -> Created:
    kwargs: dict[str, Any] = {
        "UserPoolId": props["UserPoolId"],
        "ClientName": props.get("ClientName") or provisioning.name(logical, max_length=128),
    }
    for key in (
        "GenerateSecret",
        "ExplicitAuthFlows",
        "AccessTokenValidity",
        "IdTokenValidity",
        "RefreshTokenValidity",
        "TokenValidityUnits",
        "PreventUserExistenceErrors",
        "CallbackURLs",
        "LogoutURLs",
        "AllowedOAuthFlows",
        "AllowedOAuthScopes",
        "AllowedOAuthFlowsUserPoolClient",
        "SupportedIdentityProviders",
        "ReadAttributes",
        "WriteAttributes",
        "EnableTokenRevocation",
    ):
        if key in props:
            kwargs[key] = props[key]
    client = provisioning.client("cognito-idp").create_user_pool_client(**kwargs)["UserPoolClient"]
    return client["ClientId"], {"ClientId": client["ClientId"]}
