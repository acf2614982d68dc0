"""S3: which operation a REST request is, and the IAM actions and resources each operation needs.

The mapping works on botocore's operation and parameter names, so the runtime's endpoint (which reads
them off the wire) and the tests' botocore hook (tests/iam.py) share it. Sources: "Required permissions
for Amazon S3 API operations" and each operation's Permissions section in the S3 API reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse
from xml.etree import ElementTree

from filepipe.local.iam import resource_policies
from filepipe.local.iam.calls import Access, Call, Needs, UnknownOperation
from filepipe.local.iam.patterns import ContextValue

# Bucket subresources: query parameter -> operation, by method.
_BUCKET_GET = {
    "policy": "GetBucketPolicy",
    "policyStatus": "GetBucketPolicyStatus",
    "versioning": "GetBucketVersioning",
    "tagging": "GetBucketTagging",
    "cors": "GetBucketCors",
    "lifecycle": "GetBucketLifecycleConfiguration",
    "encryption": "GetBucketEncryption",
    "notification": "GetBucketNotificationConfiguration",
    "logging": "GetBucketLogging",
    "acl": "GetBucketAcl",
    "location": "GetBucketLocation",
    "publicAccessBlock": "GetPublicAccessBlock",
    "ownershipControls": "GetBucketOwnershipControls",
    "website": "GetBucketWebsite",
    "uploads": "ListMultipartUploads",
    "versions": "ListObjectVersions",
}
_BUCKET_PUT = {
    "policy": "PutBucketPolicy",
    "versioning": "PutBucketVersioning",
    "tagging": "PutBucketTagging",
    "cors": "PutBucketCors",
    "lifecycle": "PutBucketLifecycleConfiguration",
    "encryption": "PutBucketEncryption",
    "notification": "PutBucketNotificationConfiguration",
    "logging": "PutBucketLogging",
    "acl": "PutBucketAcl",
    "publicAccessBlock": "PutPublicAccessBlock",
    "ownershipControls": "PutBucketOwnershipControls",
    "website": "PutBucketWebsite",
}
_BUCKET_DELETE = {
    "policy": "DeleteBucketPolicy",
    "tagging": "DeleteBucketTagging",
    "cors": "DeleteBucketCors",
    "lifecycle": "DeleteBucketLifecycle",
    "encryption": "DeleteBucketEncryption",
    "publicAccessBlock": "DeletePublicAccessBlock",
    "ownershipControls": "DeleteBucketOwnershipControls",
    "website": "DeleteBucketWebsite",
}
_OBJECT_GET = {
    "uploadId": "ListParts",
    "tagging": "GetObjectTagging",
    "acl": "GetObjectAcl",
    "attributes": "GetObjectAttributes",
    "retention": "GetObjectRetention",
    "legal-hold": "GetObjectLegalHold",
}

# Bucket-level operations and the action each needs on the bucket (the action's name differs from the
# operation's for several of them).
_ON_BUCKET = {
    "HeadBucket": "s3:ListBucket",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "GetBucketPolicyStatus": "s3:GetBucketPolicyStatus",
    "PutBucketPolicy": "s3:PutBucketPolicy",
    "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "PutBucketVersioning": "s3:PutBucketVersioning",
    "GetBucketTagging": "s3:GetBucketTagging",
    "PutBucketTagging": "s3:PutBucketTagging",
    "DeleteBucketTagging": "s3:PutBucketTagging",
    "GetBucketCors": "s3:GetBucketCORS",
    "PutBucketCors": "s3:PutBucketCORS",
    "DeleteBucketCors": "s3:PutBucketCORS",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "DeleteBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetBucketNotificationConfiguration": "s3:GetBucketNotification",
    "PutBucketNotificationConfiguration": "s3:PutBucketNotification",
    "GetBucketLogging": "s3:GetBucketLogging",
    "PutBucketLogging": "s3:PutBucketLogging",
    "GetBucketAcl": "s3:GetBucketAcl",
    "PutBucketAcl": "s3:PutBucketAcl",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "DeletePublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "GetBucketOwnershipControls": "s3:GetBucketOwnershipControls",
    "PutBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "DeleteBucketOwnershipControls": "s3:PutBucketOwnershipControls",
    "GetBucketWebsite": "s3:GetBucketWebsite",
    "PutBucketWebsite": "s3:PutBucketWebsite",
    "DeleteBucketWebsite": "s3:DeleteBucketWebsite",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}
# Object-level operations that name their version: the action gains "Version" when a version is named.
_ON_OBJECT_VERSIONED = {
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
    "DeleteObjectTagging": "s3:DeleteObjectTagging",
    "GetObjectAcl": "s3:GetObjectAcl",
    "PutObjectAcl": "s3:PutObjectAcl",
    "GetObjectAttributes": "s3:GetObjectAttributes",
    "GetObjectRetention": "s3:GetObjectRetention",
    "GetObjectLegalHold": "s3:GetObjectLegalHold",
}
_ON_OBJECT = {
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
}


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


_VERSION_ACTIONS = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
    "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
    "s3:GetObjectAttributes": "s3:GetObjectVersionAttributes",
}


def versioned(action: str, version: str | None) -> str:
    """A request naming a version is authorised as the Version action: s3:GetObject -> s3:GetObjectVersion."""
    return _VERSION_ACTIONS.get(action, action) if version else action


PolicyFor = Callable[[str], Any]


class S3Rules:
    """The accesses of S3 operations; ``bucket_policy`` finds a bucket's policy (None in the tests' hook)."""

    def __init__(self, bucket_policy: PolicyFor | None = None) -> None:
        self._bucket_policy = bucket_policy

    def _policy(self, bucket: str) -> Callable[[], Any] | None:
        finder = self._bucket_policy
        return (lambda: finder(bucket)) if finder is not None else None

    def _access(
        self,
        action: str,
        bucket: str,
        key: str | None = None,
        context: Mapping[str, ContextValue] | None = None,
    ) -> Access:
        resource = object_arn(bucket, key) if key is not None else bucket_arn(bucket)
        return Access(action, resource, context or {}, self._policy(bucket))

    def needs(self, operation: str, params: Mapping[str, Any]) -> Needs:
        """The accesses of one operation, named and parameterised as botocore names them."""
        bucket = str(params.get("Bucket", ""))
        key = params.get("Key")
        version = params.get("VersionId") or None
        context: dict[str, ContextValue] = {}
        if version:
            context["s3:versionid"] = str(version)
        if operation in ("GetObject", "HeadObject"):
            return Needs((self._access(versioned("s3:GetObject", version), bucket, key, context),), bucket)
        if operation in ("CopyObject", "UploadPartCopy"):
            source_bucket, source_key, source_version = copy_source(params["CopySource"])
            read = self._access(versioned("s3:GetObject", source_version), source_bucket, source_key)
            write = self._access("s3:PutObject", bucket, key, _write_context(params))
            return Needs((read, write, *self._write_extras(bucket, key, params)), source_bucket)
        if operation in ("PutObject", "CreateMultipartUpload", "PostObject"):
            write = self._access("s3:PutObject", bucket, key, _write_context(params))
            return Needs((write, *self._write_extras(bucket, key, params)))
        if operation == "DeleteObjects":
            # S3 reports refused keys one by one inside a 200; refusing the whole call is stricter, louder.
            objects = params.get("Delete", {}).get("Objects", [])
            return Needs(
                tuple(
                    self._access(versioned("s3:DeleteObject", item.get("VersionId")), bucket, item["Key"])
                    for item in objects
                )
            )
        if operation in ("ListObjects", "ListObjectsV2", "ListObjectVersions"):
            listing: dict[str, ContextValue] = {}
            for name, context_key in (("Prefix", "s3:prefix"), ("Delimiter", "s3:delimiter")):
                if name in params:
                    listing[context_key] = str(params[name])
            if "MaxKeys" in params:
                listing["s3:max-keys"] = str(params["MaxKeys"])
            action = "s3:ListBucketVersions" if operation == "ListObjectVersions" else "s3:ListBucket"
            return Needs((self._access(action, bucket, None, listing),))
        if operation == "ListBuckets":
            return Needs((Access("s3:ListAllMyBuckets", "*"),))
        if operation in _ON_OBJECT_VERSIONED:
            action = versioned(_ON_OBJECT_VERSIONED[operation], version)
            return Needs((self._access(action, bucket, key, context),))
        if operation in _ON_OBJECT:
            return Needs((self._access(_ON_OBJECT[operation], bucket, key),))
        if operation in _ON_BUCKET:
            return Needs((self._access(_ON_BUCKET[operation], bucket),))
        raise UnknownOperation(f"S3 {operation}")

    def _write_extras(self, bucket: str, key: Any, params: Mapping[str, Any]) -> tuple[Access, ...]:
        # Tags or an ACL on a new object are their own permissions (PutObject's Permissions section).
        extras = []
        if params.get("Tagging") and params.get("TaggingDirective", "REPLACE") == "REPLACE":
            extras.append(self._access("s3:PutObjectTagging", bucket, key))
        if params.get("ACL"):
            extras.append(self._access("s3:PutObjectAcl", bucket, key))
        return tuple(extras)

    # ------------------------------------------------------------ off the wire
    def call_needs(self, call: Call) -> Needs:
        operation, params = operation_of(call)
        call.operation = operation
        needs = self.needs(operation, params)
        extra: dict[str, ContextValue] = {
            "s3:authtype": call.auth_type,
            "s3:signatureversion": "AWS4-HMAC-SHA256",
        }
        return Needs(
            tuple(Access(a.action, a.resource, {**a.context, **extra}, a.policy) for a in needs.accesses),
            needs.reads_from,
        )


def _write_context(params: Mapping[str, Any]) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {}
    if params.get("ACL"):
        context["s3:x-amz-acl"] = str(params["ACL"])
    if params.get("ServerSideEncryption"):
        context["s3:x-amz-server-side-encryption"] = str(params["ServerSideEncryption"])
    return context


def copy_source(source: Any) -> tuple[str, str, str | None]:
    """(bucket, key, version) of a CopySource: botocore's dict or the header's "bucket/key?versionId=..."."""
    if isinstance(source, Mapping):
        return str(source["Bucket"]), str(source["Key"]), source.get("VersionId")
    parsed = urlparse(str(source))
    bucket, _, key = unquote(parsed.path).lstrip("/").partition("/")
    return bucket, key, parse_qs(parsed.query).get("versionId", [None])[0]


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def operation_of(call: Call) -> tuple[str, dict[str, Any]]:
    """The S3 operation and its botocore-named parameters of a path-style REST request."""
    bucket, _, key = unquote(call.path).lstrip("/").partition("/")
    query, headers, method = call.query, call.headers, call.method
    params: dict[str, Any] = {"Bucket": bucket}
    version = _first(query, "versionId")
    if version:
        params["VersionId"] = version
    if not bucket:
        if method == "GET":
            return "ListBuckets", {}
        raise UnknownOperation(f"S3 {method} /")
    if not key:
        for name, context_key in (("prefix", "Prefix"), ("delimiter", "Delimiter"), ("max-keys", "MaxKeys")):
            if name in query:
                params[context_key] = _first(query, name) or ""
        if method == "HEAD":
            return "HeadBucket", params
        table = {"GET": _BUCKET_GET, "PUT": _BUCKET_PUT, "DELETE": _BUCKET_DELETE}.get(method, {})
        for name, operation in table.items():
            if name in query:
                return operation, params
        if method == "GET":
            return ("ListObjectsV2" if _first(query, "list-type") == "2" else "ListObjects"), params
        if method == "PUT":
            return "CreateBucket", params
        if method == "DELETE":
            return "DeleteBucket", params
        if method == "POST" and "delete" in query:
            params["Delete"] = {"Objects": call.params.get("Objects", [])}
            return "DeleteObjects", params
        raise UnknownOperation(f"S3 {method} on a bucket")
    params["Key"] = key
    if headers.get("x-amz-tagging"):
        params["Tagging"] = headers["x-amz-tagging"]
    if headers.get("x-amz-tagging-directive"):
        params["TaggingDirective"] = headers["x-amz-tagging-directive"]
    if headers.get("x-amz-acl"):
        params["ACL"] = headers["x-amz-acl"]
    if headers.get("x-amz-server-side-encryption"):
        params["ServerSideEncryption"] = headers["x-amz-server-side-encryption"]
    if method in ("GET", "HEAD"):
        if method == "GET":
            for name, operation in _OBJECT_GET.items():
                if name in query:
                    return operation, params
        return ("GetObject" if method == "GET" else "HeadObject"), params
    if method == "PUT":
        if "tagging" in query:
            return "PutObjectTagging", params
        if "acl" in query:
            return "PutObjectAcl", params
        if "x-amz-copy-source" in headers:
            params["CopySource"] = headers["x-amz-copy-source"]
            return ("UploadPartCopy" if "uploadId" in query else "CopyObject"), params
        return ("UploadPart" if "uploadId" in query and "partNumber" in query else "PutObject"), params
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload", params
        if "uploadId" in query:
            return "CompleteMultipartUpload", params
        raise UnknownOperation(f"S3 POST on an object ({', '.join(sorted(query)) or 'no query'})")
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload", params
        if "tagging" in query:
            return "DeleteObjectTagging", params
        return "DeleteObject", params
    raise UnknownOperation(f"S3 {method} on an object")


def deleted_objects(body: bytes) -> list[dict[str, str]]:
    """The keys (and versions) of a DeleteObjects request body."""
    root = ElementTree.fromstring(body)  # noqa: S314 - a local request's own body, as S3 parses it
    found = []
    for item in root.iter():
        if not item.tag.endswith("Object"):
            continue
        entry = {re.sub(r"^\{.*\}", "", child.tag): child.text or "" for child in item}
        if "Key" in entry:
            found.append({k: v for k, v in entry.items() if k in ("Key", "VersionId")})
    return found


def rules(account: str) -> S3Rules:
    return S3Rules(lambda bucket: resource_policies.bucket(account, bucket))
