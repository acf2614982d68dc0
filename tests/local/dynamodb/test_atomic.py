"""Conditional writes race as on DynamoDB: of many requests claiming one item at once, exactly one wins."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from filepipe.local import moto_patches
from filepipe.local.services.dynamodb.patches import atomic_item_operations

CLAIMANTS = 12
ITEMS = 60


@pytest.fixture
def endpoint() -> Iterator[str]:
    uninstall = moto_patches.install(atomic_item_operations)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # Threads switch every microsecond instead of every 5 ms, so the requests' Python code interleaves as
    # concurrent requests would on DynamoDB's side: without the patch, claims race (seen in most runs).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield f"http://{host}:{port}"
    finally:
        sys.setswitchinterval(interval)
        server.stop()
        uninstall()


def test_concurrent_conditional_claims_of_an_item_let_exactly_one_through(endpoint: str) -> None:
    def client() -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    client().create_table(
        TableName="claims",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    wins: list[tuple[int, int]] = []
    start = threading.Barrier(CLAIMANTS)

    def claim(claimant: int) -> None:
        dynamodb = client()
        start.wait(timeout=30)
        for item in range(ITEMS):
            try:
                dynamodb.update_item(
                    TableName="claims",
                    Key={"pk": {"S": f"item-{item}"}},
                    UpdateExpression="SET winner = :me",
                    ConditionExpression="attribute_not_exists(winner)",
                    ExpressionAttributeValues={":me": {"N": str(claimant)}},
                )
            except dynamodb.exceptions.ConditionalCheckFailedException:
                continue
            wins.append((item, claimant))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(CLAIMANTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(item for item, _ in wins) == list(range(ITEMS)), "each item has exactly one winner"
    stored = client().scan(TableName="claims")["Items"]
    assert {(int(i["pk"]["S"].split("-")[1]), int(i["winner"]["N"])) for i in stored} == set(wins)
