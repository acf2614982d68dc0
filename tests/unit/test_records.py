"""Record values in and out of DynamoDB's types: numbers are decimals there, plain ints and floats here."""

from __future__ import annotations

import math

import pytest

from common.records import from_item, to_item


def test_floats_are_stored_as_the_decimals_they_show_and_read_back_alike() -> None:
    values = {"exif": {"ExposureTime": 0.008, "FNumber": 2.8, "ISOSpeedRatings": 400}, "sizes": [1.5, 2]}
    item = to_item(values)
    assert item["exif"]["M"]["ExposureTime"] == {"N": "0.008"}
    assert item["sizes"]["L"] == [{"N": "1.5"}, {"N": "2"}]
    assert from_item(item) == values


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_number_dynamodb_cannot_store_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="stores no"):
        to_item({"exif": {"FNumber": value}})
