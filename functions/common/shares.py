"""DynamoDB adapter for share links: keyed by the token's SHA-256 (never the token), indexed by file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.links import LinkItems
from common.model import SHARE_LOG_SLOTS, share_file_ids
from common.records import from_item, to_item

SHARE_SK = "SHARE"
MEMBER_PREFIX = "MEMBER#"
LOG_PREFIX = "LOG#"
FILE_INDEX = "gsi1"


def share_pk(share_id: str) -> str:
    return f"SHARE#{share_id}"


def file_index_pk(file_id: str) -> str:
    return f"FILE#{file_id}"


def log_slot(download: int) -> str:
    return f"{LOG_PREFIX}{(download - 1) % SHARE_LOG_SLOTS:03d}"


class ShareRecords(LinkItems):
    """Share items in the single table, all under ``pk = SHARE#sha256(token)``:

    - ``sk = SHARE``: the link itself, indexed by its first file (``gsi1pk = FILE#fileId``);
    - ``sk = MEMBER#fileId``: one per further file, indexed by that file, so each file finds its links;
    - ``sk = LOG#nnn``: the download log, ``SHARE_LOG_SLOTS`` items used in turn;
    - ``sk = GUESSES#window``: password attempts in one rate-limit window (``common.links``).

    ``shareId`` is the token's SHA-256 in hex: what the owner sees and revokes by. ``expiresAtEpoch`` is
    the table's TTL attribute on every item, so DynamoDB removes expired links, stale members, old log
    entries and finished windows on its own; reads still check expiry themselves because TTL deletion
    can lag by days.
    """

    kind = "share"

    @staticmethod
    def link_pk(link_id: str) -> str:
        return share_pk(link_id)

    @staticmethod
    def _key(share_id: str, sort_key: str) -> dict[str, Any]:
        return to_item({"pk": share_pk(share_id), "sk": sort_key})

    def key(self, share_id: str) -> dict[str, Any]:
        return self._key(share_id, SHARE_SK)

    # ------------------------------------------------------------ the link
    def create(self, share: Mapping[str, Any]) -> None:
        """Write a new share (``shareId``, ``fileIds``, ``ownerId``, ``createdAt``, expiry, settings).

        Members first, the link last: until the link exists nothing can use it, and a failure in between
        leaves only members that expire with it.
        """
        file_ids = share_file_ids(share)
        order = f"{share['createdAt']}#{share['shareId']}"
        for file_id in file_ids[1:]:
            self._call("put_item", Item=to_item(self._member(share, file_id, order)))
        values = {
            "pk": share_pk(share["shareId"]),
            "sk": SHARE_SK,
            "gsi1pk": file_index_pk(file_ids[0]),
            "gsi1sk": order,
            "downloads": 0,
            "fileId": file_ids[0],
            **share,
        }
        self._call("put_item", Item=to_item(values), ConditionExpression="attribute_not_exists(pk)")

    @staticmethod
    def _member(share: Mapping[str, Any], file_id: str, order: str) -> dict[str, Any]:
        return {
            "pk": share_pk(share["shareId"]),
            "sk": f"{MEMBER_PREFIX}{file_id}",
            "gsi1pk": file_index_pk(file_id),
            "gsi1sk": order,
            "shareId": share["shareId"],
            "ownerId": share["ownerId"],
            "fileId": file_id,
            "expiresAtEpoch": share.get("expiryCapEpoch", share["expiresAtEpoch"]),
        }

    def get(self, share_id: str) -> dict[str, Any] | None:
        response = self._call("get_item", Key=self.key(share_id), ConsistentRead=True)
        item = response.get("Item")
        return from_item(item) if item else None

    def list_for_file(self, file_id: str) -> list[dict[str, Any]]:
        """Every share holding one file, newest first (the index is eventually consistent)."""
        items = self._query(
            IndexName=FILE_INDEX,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues=to_item({":pk": file_index_pk(file_id)}),
            ScanIndexForward=False,
        )
        shares: list[dict[str, Any]] = []
        seen: set[str] = set()
        for raw in items:
            item = from_item(raw)
            share = item if item.get("sk") == SHARE_SK else None
            if str(item.get("sk", "")).startswith(MEMBER_PREFIX):
                share = self.get(str(item["shareId"]))
            if share is None or share["shareId"] in seen or file_id not in share_file_ids(share):
                continue
            seen.add(share["shareId"])
            shares.append(share)
        return shares

    def update(
        self, share_id: str, owner_id: str, changes: Mapping[str, Any], removals: Iterable[str] = ()
    ) -> dict[str, Any] | None:
        """Set ``changes`` and remove ``removals`` on this owner's share; None if they have no such share."""
        return self.update_owned(self.key(share_id), owner_id, changes, removals)

    def expire_members_at(self, share: Mapping[str, Any], epoch: int) -> None:
        """Keep the members' TTL with the latest moment the link itself can live."""
        for file_id in share_file_ids(share)[1:]:
            self._conditional(
                "update_item",
                Key=self._key(share["shareId"], f"{MEMBER_PREFIX}{file_id}"),
                UpdateExpression="SET expiresAtEpoch = :epoch",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_item({":epoch": epoch}),
            )

    def delete(self, share_id: str, owner_id: str) -> bool:
        """Remove the share and its members if this owner has it; False when there is no such share of theirs.

        The download log and password windows are left to their TTL (``purge`` removes them at once).
        """
        response = self._conditional(
            "delete_item",
            Key=self.key(share_id),
            ConditionExpression="ownerId = :owner",
            ExpressionAttributeValues=to_item({":owner": owner_id}),
            ReturnValues="ALL_OLD",
        )
        if response is None:
            return False
        old = from_item(response.get("Attributes") or {})
        for file_id in share_file_ids(old)[1:] if old else []:
            self._call("delete_item", Key=self._key(share_id, f"{MEMBER_PREFIX}{file_id}"))
        return True

    def remove_file(self, share: Mapping[str, Any], file_id: str) -> bool:
        """Take one file out of a share of several; False when the share changed meanwhile."""
        file_ids = share_file_ids(share)
        index = file_ids.index(file_id)
        response = self._conditional(
            "update_item",
            Key=self.key(share["shareId"]),
            UpdateExpression=f"REMOVE fileIds[{index}]",
            ConditionExpression=f"fileIds[{index}] = :file AND size(fileIds) > :one",
            ExpressionAttributeValues=to_item({":file": file_id, ":one": 1}),
        )
        if response is None:
            return False
        self._call("delete_item", Key=self._key(share["shareId"], f"{MEMBER_PREFIX}{file_id}"))
        return True

    def forget_file(self, owner_id: str, file_id: str) -> None:
        """A file is being deleted: links holding only it go, links holding others keep those."""
        for share in self.list_for_file(file_id):
            if share.get("ownerId") != owner_id:
                continue
            alone = share_file_ids(share) == [file_id]
            # Alone in its link, or the link changed under us: the link goes rather than outlive the file.
            if (alone or not self.remove_file(share, file_id)) and self.delete(share["shareId"], owner_id):
                self.purge(share["shareId"])

    # ------------------------------------------------------------ downloads
    def count_download(self, share_id: str, now_epoch: int) -> dict[str, Any] | None:
        """Count one download if the share still exists, is unexpired and has downloads left.

        One conditional UpdateItem, so concurrent downloads can never exceed ``maxDownloads``.
        Returns the share after counting, or None when the condition failed.
        """
        response = self._conditional(
            "update_item",
            Key=self.key(share_id),
            UpdateExpression="SET downloads = if_not_exists(downloads, :zero) + :one",
            ConditionExpression=(
                "attribute_exists(pk) AND expiresAtEpoch > :now "
                "AND (attribute_not_exists(maxDownloads) OR downloads < maxDownloads)"
            ),
            ExpressionAttributeValues=to_item({":zero": 0, ":one": 1, ":now": now_epoch}),
            ReturnValues="ALL_NEW",
        )
        return from_item(response["Attributes"]) if response else None

    def slide_expiry(self, share_id: str, window: int, expires_epoch: int, expires_at: str) -> bool:
        """Move the expiry later, only while the link slides by this window and its cap allows it."""
        response = self._conditional(
            "update_item",
            Key=self.key(share_id),
            UpdateExpression="SET expiresAtEpoch = :epoch, expiresAt = :at",
            ConditionExpression=(
                "attribute_exists(pk) AND slidingExpirySeconds = :window "
                "AND expiresAtEpoch < :epoch AND expiryCapEpoch >= :epoch"
            ),
            ExpressionAttributeValues=to_item(
                {":epoch": expires_epoch, ":at": expires_at, ":window": window}
            ),
        )
        return response is not None

    def log_download(self, share_id: str, entry: Mapping[str, Any], expires_epoch: int) -> None:
        """Keep ``entry`` (numbered by ``download``) in its slot, over an older download's entry."""
        download = int(entry["download"])
        self._conditional(
            "put_item",
            Item=to_item(
                {
                    "pk": share_pk(share_id),
                    "sk": log_slot(download),
                    **entry,
                    "expiresAtEpoch": expires_epoch,
                }
            ),
            ConditionExpression="attribute_not_exists(download) OR download < :download",
            ExpressionAttributeValues=to_item({":download": download}),
        )

    def download_log(self, share_id: str, now_epoch: int) -> list[dict[str, Any]]:
        """The kept downloads, newest first; entries past their TTL are left out though not yet deleted."""
        response = self._call(
            "query",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :log)",
            ExpressionAttributeValues=to_item({":pk": share_pk(share_id), ":log": LOG_PREFIX}),
            ConsistentRead=True,
        )
        entries = [from_item(item) for item in response.get("Items", [])]
        kept = [entry for entry in entries if int(entry.get("expiresAtEpoch", 0)) > now_epoch]
        return sorted(kept, key=lambda entry: int(entry["download"]), reverse=True)

    def claim_download_email(self, share_id: str, download: int) -> bool:
        """True once per logged download: duplicate events send no second email."""
        response = self._conditional(
            "update_item",
            Key=self._key(share_id, log_slot(download)),
            UpdateExpression="SET emailed = :true",
            ConditionExpression="download = :download AND attribute_not_exists(emailed)",
            ExpressionAttributeValues=to_item({":download": download, ":true": True}),
        )
        return response is not None

    def release_download_email(self, share_id: str, download: int) -> None:
        """Undo a claim whose email was certainly not sent, so a retry sends it."""
        self._conditional(
            "update_item",
            Key=self._key(share_id, log_slot(download)),
            UpdateExpression="REMOVE emailed",
            ConditionExpression="download = :download",
            ExpressionAttributeValues=to_item({":download": download}),
        )
