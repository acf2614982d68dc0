"""A user's journey through the public surfaces only, unchanged against `filepipe local` and a deployed stack.

Sign in, upload a photo, an EICAR file and an executable named .jpg, watch them reach READY, QUARANTINED
and REJECTED, download the photo and its thumbnail, share it with a visitor, then delete it.
"""

from __future__ import annotations

import io
import time

from PIL import Image

from filepipe.clamd import eicar_bytes
from tests import images
from tests.journey.conftest import Account, JourneyTarget


def test_sign_up_upload_download_share_quarantine_reject_delete(
    target: JourneyTarget, account: Account
) -> None:
    started = time.monotonic()
    owner = target.browser()
    owner.sign_in(account.email, account.password)
    visitor = target.browser()

    photo = images.jpeg_with_exif((1600, 1200))
    photo_id = owner.upload("journey.jpg", photo, "image/jpeg")
    infected_id = owner.upload("notes.txt", eicar_bytes(), "text/plain")
    program_id = owner.upload("cat.jpg", images.exe(), "image/jpeg")
    assert visitor.request("GET", f"/files/{photo_id}", auth=False).status_code == 401

    records = target.wait_final(owner, [photo_id, infected_id, program_id])
    processed = time.monotonic()

    ready = records[photo_id]
    assert ready["status"] == "READY", ready
    assert (ready["name"], ready["size"], ready["contentType"]) == ("journey.jpg", len(photo), "image/jpeg")
    original = owner.download(ready["downloadUrl"])
    assert original.content == photo
    assert original.headers["Content-Type"] == "image/jpeg"
    assert original.headers["Content-Disposition"].startswith("attachment")
    assert ready["thumbnails"], ready
    for thumbnail in ready["thumbnails"]:
        with Image.open(io.BytesIO(owner.download(thumbnail["url"]).content)) as picture:
            assert max(picture.size) <= thumbnail["size"]

    # One download allowed: the preview (what link-preview bots fetch) must not use it up.
    share = owner.call(
        "POST", f"/files/{photo_id}/shares", {"expiresInSeconds": 600, "maxDownloads": 1}, expect=201
    )
    preview = visitor.call("GET", f"/shares/{share['token']}", auth=False)
    assert (preview["name"], preview["size"]) == ("journey.jpg", len(photo))
    link = visitor.call("POST", f"/shares/{share['token']}/download", auth=False)
    assert visitor.download(link["url"]).content == photo
    assert visitor.request("POST", f"/shares/{share['token']}/download", auth=False).status_code == 404

    infected = records[infected_id]
    assert infected["status"] == "QUARANTINED", infected
    assert "downloadUrl" not in infected
    refused = owner.request("POST", f"/files/{infected_id}/shares", {"expiresInSeconds": 600})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "FileNotReady"

    program = records[program_id]
    assert program["status"] == "REJECTED", program
    assert program["error"]["code"], program
    assert "downloadUrl" not in program

    unlimited = owner.call("POST", f"/files/{photo_id}/shares", {"expiresInSeconds": 600}, expect=201)
    owner.call("DELETE", f"/files/{photo_id}", expect=204)
    assert owner.request("GET", f"/files/{photo_id}").status_code == 404
    assert visitor.request("GET", f"/shares/{unlimited['token']}", auth=False).status_code == 404
    assert owner.http.get(ready["downloadUrl"], timeout=owner.timeout).status_code != 200

    print(
        f"\njourney on {target.description}: processed in {processed - started:.1f} s, "
        f"done in {time.monotonic() - started:.1f} s"
    )
