"""DynamoDB: table and index ARNs, batch and transaction requests by the item actions they contain."""

from __future__ import annotations

from typing import Any

from filepipe.local.iam.calls import Access, Call, Needs

_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_NO_TABLE = {"ListTables", "DescribeLimits", "DescribeEndpoints", "ListBackups", "ListGlobalTables"}


def table_arn(call: Call, table: Any) -> str:
    name = str(table)
    return name if name.startswith("arn:") else call.arn("dynamodb", f"table/{name}")


def needs(call: Call) -> Needs:
    operation, params = call.operation, call.params
    if operation in _NO_TABLE:
        return Needs((Access(f"dynamodb:{operation}", "*"),))
    if operation in ("BatchGetItem", "BatchWriteItem"):
        tables = params.get("RequestItems", {})
        return Needs(tuple(Access(f"dynamodb:{operation}", table_arn(call, table)) for table in tables))
    if operation == "TransactWriteItems":
        accesses = []
        for item in params.get("TransactItems", []):
            for kind, body in item.items():
                action = _ITEM_ACTIONS.get(kind, kind)
                accesses.append(Access(f"dynamodb:{action}", table_arn(call, body.get("TableName", ""))))
        return Needs(tuple(accesses))
    if operation == "TransactGetItems":
        return Needs(
            tuple(
                Access("dynamodb:GetItem", table_arn(call, item.get("Get", {}).get("TableName", "")))
                for item in params.get("TransactItems", [])
            )
        )
    table = params.get("TableName") or params.get("TableArn") or params.get("ResourceArn") or "*"
    resource = table_arn(call, table) if table != "*" else "*"
    if operation in ("Query", "Scan") and params.get("IndexName"):
        resource = f"{resource}/index/{params['IndexName']}"
    return Needs((Access(f"dynamodb:{operation}", resource),))
