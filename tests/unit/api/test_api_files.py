"""GET /files, GET /files/{fileId} and DELETE /files/{fileId}: own files only, links only when READY."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from api.files import content_disposition
from common.model import Status, clean_key, ingest_key, thumbnail_key
from tests.unit.api.support import ApiClient, Seeder, new_user

MISSING_ID = "01JD8M3Q6W9Z2X4C5V7B8N0K1P"


def _query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_ready_file_has_short_lived_attachment_links_from_the_clean_bucket(
    client: ApiClient, seed: Seeder
) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY, name="Ferien in Zürich.jpg", content_type="image/jpeg")

    response = client.call("get_file", sub=owner, path={"fileId": file_id})

    assert response.status == 200
    file = response.body
    assert {k: file[k] for k in ("fileId", "name", "contentType", "status", "sha256", "width", "height")} == {
        "fileId": file_id,
        "name": "Ferien in Zürich.jpg",
        "contentType": "image/jpeg",
        "status": "READY",
        "sha256": "ab" * 32,
        "width": 4000,
        "height": 3000,
    }
    download = urlsplit(file["downloadUrl"])
    assert download.netloc.startswith(seed.clean_bucket) or download.path.startswith(f"/{seed.clean_bucket}/")
    assert download.path.endswith(clean_key(owner, file_id))
    params = _query(file["downloadUrl"])
    assert params["X-Amz-Expires"] == "300"
    assert params["response-content-type"] == "image/jpeg"
    disposition = params["response-content-disposition"]
    assert disposition.startswith("attachment;")
    assert 'filename="Ferien in Zurich.jpg"' in disposition
    assert "filename*=UTF-8''Ferien%20in%20Z%C3%BCrich.jpg" in disposition

    assert [t["size"] for t in file["thumbnails"]] == [256, 1024]
    assert file["thumbnails"][0]["width"] == 256
    for thumbnail in file["thumbnails"]:
        assert urlsplit(thumbnail["url"]).path.endswith(thumbnail_key(owner, file_id, thumbnail["size"]))
        thumb_params = _query(thumbnail["url"])
        assert thumb_params["response-content-type"] == "image/webp"
        assert thumb_params["response-content-disposition"].startswith("attachment;")
        assert thumb_params["X-Amz-Expires"] == "300"


def test_the_download_url_serves_the_clean_original_as_an_attachment(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(
        owner, Status.READY, name="report.pdf", content_type="application/pdf", data=b"%PDF-1.7 clean"
    )

    url = client.call("get_file", sub=owner, path={"fileId": file_id}).body["downloadUrl"]
    reply = requests.get(url, timeout=10)

    assert reply.status_code == 200
    assert reply.content == b"%PDF-1.7 clean"
    assert reply.headers["Content-Type"] == "application/pdf"
    assert reply.headers["Content-Disposition"].startswith('attachment; filename="report.pdf"')


@pytest.mark.parametrize(
    "status", [Status.UPLOADING, Status.PROCESSING, Status.REJECTED, Status.QUARANTINED, Status.FAILED]
)
def test_files_that_are_not_ready_have_no_links(client: ApiClient, seed: Seeder, status: Status) -> None:
    owner = new_user()
    file_id = seed.file(owner, status)

    file = client.call("get_file", sub=owner, path={"fileId": file_id}).body

    assert file["status"] == status.value
    assert "downloadUrl" not in file
    assert "thumbnails" not in file
    if status is Status.QUARANTINED:
        assert file["error"] == {"code": "MALWARE_FOUND", "message": "Malware detected: Eicar-Test-Signature"}


def test_another_users_file_reads_exactly_like_a_missing_one(client: ApiClient, seed: Seeder) -> None:
    owner, intruder = new_user(), new_user()
    file_id = seed.file(owner, Status.READY)

    theirs = client.call("get_file", sub=intruder, path={"fileId": file_id})
    missing = client.call("get_file", sub=intruder, path={"fileId": MISSING_ID})
    malformed = client.call("get_file", sub=intruder, path={"fileId": "..%2F..%2Fetc"})

    assert theirs.status == missing.status == malformed.status == 404
    assert theirs.body == missing.body == malformed.body
    assert theirs.error_code == "FileNotFound"


def test_list_is_newest_first_and_paged(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    other = new_user()
    created = [seed.file(owner, Status.READY, name=f"f{i}.jpg") for i in range(5)]
    seed.file(other, Status.READY)

    first = client.call("list_files", sub=owner, query={"limit": "2"}).body
    second = client.call("list_files", sub=owner, query={"limit": "2", "nextToken": first["nextToken"]}).body
    third = client.call("list_files", sub=owner, query={"limit": "2", "nextToken": second["nextToken"]}).body
    everything = client.call("list_files", sub=owner, query={}).body

    # File ids are ULIDs: their order is creation order, to the millisecond.
    newest_first = sorted(created, reverse=True)
    assert [f["fileId"] for f in first["items"]] == newest_first[:2]
    assert [f["fileId"] for f in second["items"]] == newest_first[2:4]
    assert [f["fileId"] for f in third["items"]] == newest_first[4:]
    assert [f["fileId"] for f in everything["items"]] == newest_first
    assert everything["nextToken"] is None
    assert all("downloadUrl" not in f for f in everything["items"]), "lists carry no presigned URLs"


def test_list_of_a_user_without_files_is_empty(client: ApiClient) -> None:
    response = client.call("list_files", sub=new_user())

    assert response.status == 200
    assert response.body == {"items": [], "nextToken": None}


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": "0"}, "InvalidLimit"),
        ({"limit": "101"}, "InvalidLimit"),
        ({"limit": "ten"}, "InvalidLimit"),
        ({"nextToken": "not-a-token"}, "InvalidNextToken"),
        ({"nextToken": "x" * 65}, "InvalidNextToken"),
    ],
)
def test_bad_list_parameters_are_400(client: ApiClient, query: dict[str, str], code: str) -> None:
    response = client.call("list_files", sub=new_user(), query=query)

    assert response.status == 400
    assert response.error_code == code


def test_delete_removes_objects_thumbnails_record_and_shares(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.READY)
    keep_id = seed.file(owner, Status.READY)
    token = client.call("create_share", sub=owner, path={"fileId": file_id}, body={}).body["token"]
    kept_token = client.call("create_share", sub=owner, path={"fileId": keep_id}, body={}).body["token"]

    response = client.call("delete_file", sub=owner, path={"fileId": file_id})

    assert response.status == 204
    assert response.body is None
    assert seed.record(owner, file_id) is None
    assert seed.keys(seed.clean_bucket, f"files/{owner}/{file_id}/") == []
    assert seed.keys(seed.ingest_bucket, ingest_key(owner, file_id)) == []
    assert client.call("get_share", path={"token": token}).status == 404
    assert client.call("get_file", sub=owner, path={"fileId": file_id}).status == 404
    assert client.call("get_share", path={"token": kept_token}).status == 200
    assert seed.keys(seed.clean_bucket, f"files/{owner}/{keep_id}/") != []
    again = client.call("delete_file", sub=owner, path={"fileId": file_id})
    assert (again.status, again.error_code) == (404, "FileNotFound")


def test_delete_leaves_quarantined_objects_for_investigation(client: ApiClient, seed: Seeder) -> None:
    owner = new_user()
    file_id = seed.file(owner, Status.QUARANTINED)

    assert client.call("delete_file", sub=owner, path={"fileId": file_id}).status == 204

    assert seed.record(owner, file_id) is None
    assert seed.keys(seed.quarantine_bucket, f"quarantine/{owner}/{file_id}") == [
        f"quarantine/{owner}/{file_id}"
    ]


def test_deleting_another_users_file_is_404_and_changes_nothing(client: ApiClient, seed: Seeder) -> None:
    owner, intruder = new_user(), new_user()
    file_id = seed.file(owner, Status.READY)
    token = client.call("create_share", sub=owner, path={"fileId": file_id}, body={}).body["token"]
    items_before = seed.table_items()
    objects_before = seed.keys(seed.clean_bucket, f"files/{owner}/{file_id}/")

    response = client.call("delete_file", sub=intruder, path={"fileId": file_id})

    assert (response.status, response.error_code) == (404, "FileNotFound")
    assert seed.table_items() == items_before
    assert seed.keys(seed.clean_bucket, f"files/{owner}/{file_id}/") == objects_before
    assert client.call("get_share", path={"token": token}).status == 200


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name() -> None:
    assert (
        content_disposition("plain.txt") == "attachment; filename=\"plain.txt\"; filename*=UTF-8''plain.txt"
    )
    tricky = content_disposition('résumé "final" 100%\\v2.pdf')
    assert tricky.startswith('attachment; filename="resume _final_ 100__v2.pdf";')
    assert tricky.endswith("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%20100%25%5Cv2.pdf")
    assert unquote(tricky.split("UTF-8''", 1)[1]) == 'résumé "final" 100%\\v2.pdf'
    assert content_disposition("日本語.png").startswith('attachment; filename="download.png";')
    assert 'filename="download"' in content_disposition("日本")
