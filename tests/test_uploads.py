"""Photos and material files through the ticket flow, on the local store and on an S3 server
(moto over real HTTP): content-addressed, checked at confirmation, idempotent, and refused
with a clear reason that leaves everything stored as it was."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from approval.core.auth import create_user, issue_token
from approval.fieldwork.inspections import assign_inspectors, schedule_site_check
from approval.files.uploads import MB, UploadRules, object_key
from storage.enums import ObjectKind, Role
from storage.local_store import LocalObjectStore
from storage.models import AuditEvent, CheckResult, MaterialVersion, StoredObject, Upload, User
from storage.objects import ObjectStore
from tests.fieldwork_support import clerk
from tests.helpers import create_project, db_id
from tests.object_support import fresh_bucket, make_minio_store
from tests.photo_support import make_jpeg
from tests.upload_support import Files, files_client

TAKEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects", secret=b"k" * 32)
    endpoint: str = request.getfixturevalue("moto_s3")
    return make_minio_store(endpoint, fresh_bucket())


@pytest.fixture
async def site(gql: Any, clock: Any) -> dict[str, Any]:
    """A project with a site check by 住建局 (zjj), the test user ``inspector`` assigned."""
    project = await create_project(gql)
    inspection = await schedule_site_check(
        viewer=await clerk(),
        project_id=db_id(project["id"]),
        department_codes=["zjj"],
        now=clock(),
    )
    await assign_inspectors(
        viewer=await clerk(), inspection_id=inspection.id, usernames=["inspector"], now=clock()
    )
    check = await CheckResult.filter(inspection_id=inspection.id).order_by("id").first()
    assert check is not None
    global_id = f"Inspection:{inspection.id}"
    return {
        "project": project,
        "inspection_id": inspection.id,
        "check_code": check.check_code,
        "target": {
            "check": {
                "inspectionId": base64.b64encode(global_id.encode()).decode(),
                "department": "zjj",
                "checkCode": check.check_code,
            }
        },
    }


@pytest.fixture
async def files(gql: Any, clock: Any, store: ObjectStore) -> AsyncIterator[Files]:
    async with files_client(store, clock, gql.tokens) as client:
        yield client


def photo(seed: int = 0) -> bytes:
    return make_jpeg(
        width=320 + seed,
        height=240,
        taken_at=TAKEN,
        offset="+00:00",
        gps=(37.4355, 116.3575),
        noise=True,
    )


async def stored_bytes(store: ObjectStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def test_a_photo_goes_straight_to_the_store_and_comes_back_with_its_evidence(
    files: Files, site: dict[str, Any]
) -> None:
    data = photo()
    upload = await files.deliver(data, as_="inspector", target=site["target"])
    sha = hashlib.sha256(data).hexdigest()
    assert upload["status"] == "CONFIRMED"
    shot = upload["photo"]
    assert shot["id"] == sha and shot["status"] == "READY"
    assert datetime.fromisoformat(shot["takenAt"]) == TAKEN
    assert shot["latitude"] == pytest.approx(37.4355, abs=1e-4)
    assert shot["longitude"] == pytest.approx(116.3575, abs=1e-4)
    assert (shot["width"], shot["height"]) == (320, 240)
    original = await files.fetch(shot["url"])
    assert original.status_code == 200 and original.content == data
    thumb = await files.fetch(shot["thumbnailUrl"])
    assert thumb.status_code == 200
    small = Image.open(io.BytesIO(thumb.content))
    assert small.format == "JPEG" and max(small.size) <= 320
    # Content-addressed: the key follows from the hash; nothing is left in staging.
    assert await stored_bytes(files.store, object_key(ObjectKind.PHOTO, sha)) == data
    assert [i.key async for i in files.store.list("incoming/")] == []


async def test_the_same_bytes_again_are_ready_at_once_and_stored_once(
    files: Files, site: dict[str, Any]
) -> None:
    data = photo(1)
    first = await files.deliver(data, as_="inspector", target=site["target"])
    again = await files.request(data, as_="inspector", target=site["target"])
    assert again["errors"] == [] and again["ticket"] is None
    assert again["upload"]["status"] == "CONFIRMED" and again["upload"]["id"] != first["id"]
    # Confirming twice, or after a retried PUT, answers the same.
    repeat = await files.confirm(first["id"], as_="inspector")
    assert repeat["errors"] == [] and repeat["upload"]["status"] == "CONFIRMED"
    assert await StoredObject.filter(sha256=hashlib.sha256(data).hexdigest()).count() == 1
    assert len([i async for i in files.store.list("photos/")]) == 1


async def test_a_late_put_to_an_old_ticket_cannot_change_a_stored_photo(
    files: Files, site: dict[str, Any]
) -> None:
    data = photo(2)
    asked = await files.request(data, as_="inspector", target=site["target"])
    assert (await files.put(asked["ticket"], data)).status_code == 200
    assert (await files.confirm(asked["upload"]["id"], as_="inspector"))["errors"] == []
    # The ticket wrote a staging key of its own upload, never the content-addressed key.
    await files.put(asked["ticket"], PROGRAM + b"\x00" * (len(data) - len(PROGRAM)))
    sha = hashlib.sha256(data).hexdigest()
    assert await stored_bytes(files.store, object_key(ObjectKind.PHOTO, sha)) == data
    repeat = await files.confirm(asked["upload"]["id"], as_="inspector")
    assert repeat["upload"]["photo"]["status"] == "READY"


async def refused(
    files: Files, site: dict[str, Any], data: bytes, *, put: bytes | None, **facts: Any
) -> dict[str, Any]:
    """Ask for a ticket with ``facts``, PUT ``put`` (if any) and confirm: the first errors."""
    asked = await files.request(data, as_="inspector", target=site["target"], **facts)
    if asked["errors"]:
        return asked["errors"][0]  # type: ignore[no-any-return]
    if put is not None:
        await files.put(asked["ticket"], put)
    confirmed = await files.confirm(asked["upload"]["id"], as_="inspector")
    assert confirmed["upload"] is None
    return confirmed["errors"][0]  # type: ignore[no-any-return]


async def test_bad_uploads_are_refused_with_a_reason_and_nothing_stored_changes(
    files: Files, site: dict[str, Any]
) -> None:
    kept = photo(3)
    await files.deliver(kept, as_="inspector", target=site["target"])
    before = await StoredObject.all().values_list("key", "sha256", "size_bytes")
    data = photo(4)

    error = await refused(files, site, data, put=data[:-100])
    assert error["code"] == "SIZE_MISMATCH" and str(len(data) - 100) in error["message"]

    other = photo(5)
    error = await refused(files, site, data, put=None, sha256=hashlib.sha256(other).hexdigest())
    assert error["code"] == "UPLOAD_NOT_RECEIVED" and "PUT the file" in error["message"]

    error = await refused(
        files, site, other + b"!", put=None, sha256=hashlib.sha256(other).hexdigest()
    )
    assert error["code"] == "UPLOAD_NOT_RECEIVED"

    wrong = bytearray(data)
    wrong[-10] ^= 0xFF  # same size, other bytes
    error = await refused(files, site, data, put=bytes(wrong))
    assert error["code"] == "HASH_MISMATCH" and hashlib.sha256(data).hexdigest() in error["message"]

    error = await refused(files, site, PROGRAM, put=PROGRAM, fileName="photo.jpg")
    assert error["code"] == "TYPE_NOT_ALLOWED" and "program" in error["message"].lower()

    error = await refused(files, site, data, put=None, fileName="../../etc/passwd.jpg")
    assert error["code"] == "INVALID_INPUT" and error["field"] == "fileName"

    error = await refused(files, site, data, put=None, fileName="..\\boot.ini")
    assert error["code"] == "INVALID_INPUT" and error["field"] == "fileName"

    error = await refused(files, site, data, put=None, sizeBytes=26 * MB)
    assert error["code"] == "TOO_LARGE" and "25 MB" in error["message"]

    error = await refused(files, site, data, put=None, contentType="application/x-msdownload")
    assert error["code"] == "TYPE_NOT_ALLOWED" and error["field"] == "contentType"

    error = await refused(files, site, data, put=None, sha256="abc")
    assert error["code"] == "INVALID_INPUT" and error["field"] == "sha256"

    assert await StoredObject.all().values_list("key", "sha256", "size_bytes") == before
    assert [i.key async for i in files.store.list("incoming/")] == []
    kept_key = object_key(ObjectKind.PHOTO, hashlib.sha256(kept).hexdigest())
    assert await stored_bytes(files.store, kept_key) == kept


async def test_an_expired_ticket_is_refused_and_its_bytes_dropped(
    files: Files, site: dict[str, Any], clock: Any
) -> None:
    data = photo(6)
    asked = await files.request(data, as_="inspector", target=site["target"])
    assert (await files.put(asked["ticket"], data)).status_code == 200
    clock.now += timedelta(minutes=16)  # tickets last 15 minutes
    confirmed = await files.confirm(asked["upload"]["id"], as_="inspector")
    error = confirmed["errors"][0]
    assert error["code"] == "UPLOAD_EXPIRED" and "requestUpload" in error["message"]
    assert not await StoredObject.exists()
    assert [i.key async for i in files.store.list("incoming/")] == []
    # A new ticket works.
    assert (await files.deliver(data, as_="inspector", target=site["target"]))["photo"]


async def test_only_the_assigned_inspector_of_the_department_delivers_a_photo(
    files: Files, site: dict[str, Any], clock: Any
) -> None:
    data = photo(7)
    stranger = await files.request(data, as_="agent", target=site["target"])
    assert stranger["errors"][0]["code"] == "FORBIDDEN"
    colleague = await create_user(
        username="inspector2",
        password="pw-inspector2",
        display_name="验收员二",
        role=Role.INSPECTOR,
        department_code="zjj",
    )
    files.tokens["inspector2"], _ = await issue_token(
        user=colleague, now=clock(), ttl=timedelta(days=1)
    )
    unassigned = await files.request(data, as_="inspector2", target=site["target"])
    assert unassigned["errors"][0]["code"] == "NOT_FOUND" and unassigned["upload"] is None
    wrong = {"check": {**site["target"]["check"], "department": "zrzy"}}
    other = await files.request(data, as_="inspector", target=wrong)
    assert other["errors"][0]["code"] == "WRONG_DEPARTMENT"
    unknown = {"check": {**site["target"]["check"], "checkCode": "no-such-check"}}
    missing = await files.request(data, as_="inspector", target=unknown)
    assert missing["errors"][0]["field"] == "checkCode"
    # Someone else's upload id is not theirs to confirm.
    asked = await files.request(data, as_="inspector", target=site["target"])
    theirs = await files.confirm(asked["upload"]["id"], as_="clerk")
    assert theirs["errors"][0]["code"] == "NOT_FOUND"
    assert not await StoredObject.exists()


CHECK_PHOTOS = """
query($id: ID!) {
  inspection(id: $id) {
    departments { checks { code photos { id status statusLabel url thumbnailUrl } } }
  }
}"""


async def test_a_check_shows_pending_photos_until_their_bytes_arrive(
    files: Files, site: dict[str, Any]
) -> None:
    data = photo(8)
    sha = hashlib.sha256(data).hexdigest()
    await CheckResult.filter(
        inspection_id=site["inspection_id"], check_code=site["check_code"]
    ).update(photo_ids=[sha])  # as materialisation leaves it when the tablet synced first
    variables = {"id": site["target"]["check"]["inspectionId"]}

    async def shown() -> dict[str, Any]:
        data_ = await files.gql(CHECK_PHOTOS, variables, as_="supervisor")
        checks = data_["inspection"]["departments"][0]["checks"]
        return next(c for c in checks if c["code"] == site["check_code"])["photos"][0]

    pending = await shown()
    assert pending == {
        "id": sha,
        "status": "PENDING",
        "statusLabel": "待上传",
        "url": None,
        "thumbnailUrl": None,
    }
    await files.deliver(data, as_="inspector", target=site["target"])
    ready = await shown()
    assert ready["status"] == "READY"
    assert (await files.fetch(ready["url"])).content == data


async def test_a_photo_of_another_inspection_is_never_shown_ready(
    files: Files, site: dict[str, Any], gql: Any, clock: Any
) -> None:
    """An inspector puts another project's photo id into a check of their own inspection:
    the photo stays PENDING there, without a URL, while its own inspection shows it."""
    data = photo(9)
    sha = hashlib.sha256(data).hexdigest()
    await files.deliver(data, as_="inspector", target=site["target"])
    other = await create_project(gql, name="另一个项目")
    theirs = await schedule_site_check(
        viewer=await clerk(), project_id=db_id(other["id"]), department_codes=["zjj"], now=clock()
    )
    await assign_inspectors(
        viewer=await clerk(), inspection_id=theirs.id, usernames=["inspector"], now=clock()
    )
    check = await CheckResult.filter(inspection_id=theirs.id).order_by("id").first()
    assert check is not None
    await CheckResult.filter(id=check.id).update(photo_ids=[sha])  # the borrowed id

    async def shown(inspection_id: int, code: str) -> dict[str, Any]:
        gid = base64.b64encode(f"Inspection:{inspection_id}".encode()).decode()
        data_ = await files.gql(CHECK_PHOTOS, {"id": gid}, as_="supervisor")
        checks = data_["inspection"]["departments"][0]["checks"]
        return next(c for c in checks if c["code"] == code)["photos"][0]  # type: ignore[no-any-return]

    borrowed = await shown(theirs.id, check.check_code)
    assert borrowed["status"] == "PENDING" and borrowed["url"] is None
    assert borrowed["thumbnailUrl"] is None
    await CheckResult.filter(
        inspection_id=site["inspection_id"], check_code=site["check_code"]
    ).update(photo_ids=[sha])
    own = await shown(site["inspection_id"], site["check_code"])
    assert own["status"] == "READY" and (await files.fetch(own["url"])).content == data


MATERIAL_TARGET_TYPE = "business-license"


async def material_target(project: dict[str, Any], code: str) -> dict[str, Any]:
    return {"material": {"projectId": project["id"], "materialType": code}}


SUBMIT = """
mutation($input: SubmitMaterialInput!) {
  submitMaterial(input: $input) {
    material { id version versions { version fileName sha256 file { contentType url } } }
    errors { code message field }
  }
}"""


async def test_a_material_file_is_one_version_and_one_object(
    files: Files, site: dict[str, Any]
) -> None:
    from storage.models import MaterialType

    code = (await MaterialType.all().order_by("id").first()).code  # type: ignore[union-attr]
    target = await material_target(site["project"], code)
    upload = await files.deliver(PDF, as_="clerk", target=target)
    assert upload["file"]["contentType"] == "application/pdf"
    variables = {
        "input": {
            "projectId": site["project"]["id"],
            "materialType": code,
            "uploadId": upload["id"],
        }
    }
    first = (await files.gql(SUBMIT, variables, as_="clerk"))["submitMaterial"]
    assert first["errors"] == []
    again = (await files.gql(SUBMIT, variables, as_="clerk"))["submitMaterial"]
    assert again["errors"] == [] and again["material"]["version"] == first["material"]["version"]
    versions = again["material"]["versions"]
    assert len(versions) == 1 and versions[0]["fileName"] == "许可证.pdf"
    assert (await files.fetch(versions[0]["file"]["url"])).content == PDF
    assert await MaterialVersion.filter(upload_id=upload["id"]).count() == 1
    # every request that handed out download links is audited: who, which objects
    key = object_key(ObjectKind.MATERIAL, hashlib.sha256(PDF).hexdigest())
    given = await AuditEvent.filter(action="file.download").order_by("id")
    clerk_id = (await User.get(username="clerk")).id
    assert given and {e.actor_id for e in given} == {clerk_id}
    assert all(e.after["keys"] == [key] for e in given)
    # A program is not a material either, and an unconfirmed upload makes no version.
    asked = await files.request(PROGRAM, as_="clerk", target=target)
    await files.put(asked["ticket"], PROGRAM)
    variables["input"]["uploadId"] = asked["upload"]["id"]
    early = (await files.gql(SUBMIT, variables, as_="clerk"))["submitMaterial"]
    assert early["errors"][0]["code"] == "UPLOAD_NOT_RECEIVED"
    error = (await files.confirm(asked["upload"]["id"], as_="clerk"))["errors"][0]
    assert error["code"] == "TYPE_NOT_ALLOWED"
    assert await MaterialVersion.all().count() == 1


async def test_a_material_upload_for_a_project_the_user_cannot_see_is_refused(
    files: Files, site: dict[str, Any], clock: Any
) -> None:
    from storage.models import MaterialType

    code = (await MaterialType.all().order_by("id").first()).code  # type: ignore[union-attr]
    target = await material_target(site["project"], code)
    other = await create_user(
        username="agent2", password="pw-agent2", display_name="代办员二", role=Role.AGENT
    )
    files.tokens["agent2"], _ = await issue_token(user=other, now=clock(), ttl=timedelta(days=1))
    answer = await files.request(PDF, as_="agent2", target=target)  # not this project's agent
    assert answer["errors"][0]["code"] == "NOT_FOUND"
    assert answer["upload"] is None and not await Upload.exists()


async def test_large_limits_come_from_the_rules(
    gql: Any, clock: Any, store: ObjectStore, site: dict[str, Any]
) -> None:
    rules = UploadRules(max_bytes={ObjectKind.PHOTO: 1000, ObjectKind.MATERIAL: 2000})
    async with files_client(store, clock, gql.tokens, rules) as client:
        answer = await client.request(photo(9), as_="inspector", target=site["target"])
    assert answer["errors"][0]["code"] == "TOO_LARGE"
    assert "at most 1000 bytes" in answer["errors"][0]["message"]


async def test_orphans_are_found_after_the_grace_period_and_removed_without_touching_the_rest(
    files: Files, site: dict[str, Any]
) -> None:
    from approval.files.orphans import find_orphans, remove_orphans
    from storage.models import MaterialType

    kept, dropped, staged = photo(10), photo(11), photo(12)
    kept_sha = hashlib.sha256(kept).hexdigest()
    await files.deliver(kept, as_="inspector", target=site["target"])
    await files.deliver(dropped, as_="inspector", target=site["target"])
    await CheckResult.filter(
        inspection_id=site["inspection_id"], check_code=site["check_code"]
    ).update(photo_ids=[kept_sha])
    asked = await files.request(staged, as_="inspector", target=site["target"])
    await files.put(asked["ticket"], staged)  # never confirmed
    code = (await MaterialType.all().order_by("id").first()).code  # type: ignore[union-attr]
    material = await files.deliver(
        PDF, as_="clerk", target=await material_target(site["project"], code)
    )
    submit = {
        "input": {
            "projectId": site["project"]["id"],
            "materialType": code,
            "uploadId": material["id"],
        }
    }
    assert (await files.gql(SUBMIT, submit, as_="clerk"))["submitMaterial"]["errors"] == []
    stray = object_key(ObjectKind.PHOTO, "f" * 64)
    await files.store.write(stray, b"stray", content_type="image/jpeg")

    now = datetime.now(UTC)
    grace = timedelta(hours=24)
    assert await find_orphans(store=files.store, now=now, grace=grace) == []  # all too young
    later = now + timedelta(days=2)
    seen: list[tuple[int, int]] = []
    found = await find_orphans(
        store=files.store, now=later, grace=grace, progress=lambda s, f: seen.append((s, f))
    )
    dropped_sha = hashlib.sha256(dropped).hexdigest()
    reasons = {o.key: o.reason for o in found}
    assert reasons == {
        object_key(ObjectKind.PHOTO, dropped_sha): "no longer referenced",
        f"thumbnails/{dropped_sha[:2]}/{dropped_sha}.jpg": "thumbnail of an unreferenced photo",
        f"incoming/{asked['upload']['id']}": "ticket expired and never confirmed",
        stray: "never confirmed (no record)",
    }
    assert seen and seen[-1] == (len([i async for i in files.store.list("")]), 4)
    assert await remove_orphans(store=files.store, orphans=found) == 4
    left = {i.key async for i in files.store.list("")}
    assert not left & set(reasons)
    assert object_key(ObjectKind.PHOTO, kept_sha) in left
    assert object_key(ObjectKind.MATERIAL, hashlib.sha256(PDF).hexdigest()) in left
    assert not await StoredObject.exists(sha256=dropped_sha)
    assert await StoredObject.exists(sha256=kept_sha)
    assert await find_orphans(store=files.store, now=later, grace=grace) == []


async def test_a_large_material_goes_in_parts_to_s3_and_whole_to_the_local_store(
    gql: Any, clock: Any, store: ObjectStore, site: dict[str, Any]
) -> None:
    from storage.models import MaterialType

    rules = UploadRules(
        max_bytes={ObjectKind.PHOTO: 25 * MB, ObjectKind.MATERIAL: 200 * MB}, part_size=5 * MB
    )
    data = PDF + bytes(range(256)) * (11 * MB // 256)  # 11 MiB and a bit: three parts
    code = (await MaterialType.all().order_by("id").first()).code  # type: ignore[union-attr]
    target = await material_target(site["project"], code)
    async with files_client(store, clock, gql.tokens, rules) as client:
        asked = await client.request(data, as_="clerk", target=target)
        ticket = asked["ticket"]
        if store.kind == "local":
            assert ticket["parts"] == [] and ticket["url"].startswith("/objects/upload/")
            await client.put(ticket, data)
        else:
            assert ticket["url"] is None
            assert [(p["number"], p["offset"], p["size"]) for p in ticket["parts"]] == [
                (1, 0, 5 * MB),
                (2, 5 * MB, 5 * MB),
                (3, 10 * MB, len(data) - 10 * MB),
            ]
            await client.put(ticket, data, only={1, 3})
            early = await client.confirm(asked["upload"]["id"], as_="clerk")
            error = early["errors"][0]
            assert error["code"] == "UPLOAD_NOT_RECEIVED" and "part(s) 2 of 3" in error["message"]
            await client.put(ticket, data, only={2})
        done = await client.confirm(asked["upload"]["id"], as_="clerk")
        assert done["errors"] == [], done
        assert done["upload"]["file"]["sizeBytes"] == len(data)
        fetched = await client.fetch(done["upload"]["file"]["url"])
        assert fetched.content == data
    assert [i.key async for i in store.list("incoming/")] == []


async def test_claiming_a_stored_hash_with_another_size_gets_a_ticket_not_the_object(
    files: Files, site: dict[str, Any]
) -> None:
    data = photo(13)
    await files.deliver(data, as_="inspector", target=site["target"])
    claim = await files.request(
        data + b"x", as_="inspector", target=site["target"], sha256=hashlib.sha256(data).hexdigest()
    )
    assert claim["errors"] == [] and claim["ticket"] is not None
    assert claim["upload"]["status"] == "PENDING"
    await files.put(claim["ticket"], data + b"x")
    refused = await files.confirm(claim["upload"]["id"], as_="inspector")
    assert refused["errors"][0]["code"] == "HASH_MISMATCH"


async def test_a_refused_or_abandoned_ticket_in_parts_ends_and_leaves_no_parts(
    gql: Any, clock: Any, moto_s3: str, site: dict[str, Any]
) -> None:
    """S3 only: the local store takes whole files, it gives no tickets in parts."""
    from approval.files.orphans import remove_expired_tickets
    from storage.models import MaterialType
    from storage.objects import ObjectStoreError

    store = make_minio_store(moto_s3, fresh_bucket())
    rules = UploadRules(
        max_bytes={ObjectKind.PHOTO: 25 * MB, ObjectKind.MATERIAL: 200 * MB}, part_size=5 * MB
    )
    data = PDF + bytes(range(256)) * (6 * MB // 256)  # two parts
    code = (await MaterialType.all().order_by("id").first()).code  # type: ignore[union-attr]
    target = await material_target(site["project"], code)
    async with files_client(store, clock, gql.tokens, rules) as client:
        wrong = await client.request(data, as_="clerk", target=target)
        await client.put(wrong["ticket"], data[:-1] + b"!")  # same size, other bytes
        refused = (await client.confirm(wrong["upload"]["id"], as_="clerk"))["errors"][0]
        assert refused["code"] == "HASH_MISMATCH" and "ask for a new ticket" in refused["message"]
        again = (await client.confirm(wrong["upload"]["id"], as_="clerk"))["errors"][0]
        assert again["code"] == "UPLOAD_EXPIRED"  # not a store error about finished parts

        abandoned = await client.request(data, as_="clerk", target=target)
        await client.put(abandoned["ticket"], data, only={1})
    row = await Upload.get(id=abandoned["upload"]["id"])
    assert row.multipart_id
    later = datetime.now(UTC) + timedelta(days=2)
    assert await remove_expired_tickets(store=store, now=later, grace=timedelta(hours=24)) >= 1
    assert not await Upload.exists(id=row.id)
    with pytest.raises(ObjectStoreError):  # the parts are gone with their upload
        await store.complete_parts(row.staging_key, multipart_id=row.multipart_id, part_count=2)


async def test_knowing_a_files_hash_and_size_is_not_enough_to_get_its_bytes(
    files: Files, site: dict[str, Any], clock: Any, gql: Any
) -> None:
    """Bytes stored for a project are confirmed at once only for those who already hold them
    where they may see them; anyone else must send the bytes (kept once all the same)."""
    from storage.models import MaterialType

    code = (await MaterialType.all().order_by("id").first()).code  # type: ignore[union-attr]
    secret = PDF.replace(b"Catalog", "Catalog /Secret (合同金额 2800 万元)".encode())
    await files.deliver(secret, as_="clerk", target=await material_target(site["project"], code))
    other = await create_user(
        username="agent-2", password="a-long-password", display_name="代办员二", role=Role.AGENT
    )
    files.tokens["agent-2"], _ = await issue_token(user=other, now=clock(), ttl=timedelta(hours=1))
    theirs = await create_project(gql, agent="agent-2", name="另一企业的项目")
    target = await material_target(theirs, code)
    asked = await files.request(secret, as_="agent-2", target=target)
    assert asked["errors"] == [] and asked["ticket"] is not None  # no instant confirmation
    assert asked["upload"]["status"] == "PENDING"
    early = await files.confirm(asked["upload"]["id"], as_="agent-2")  # without sending
    assert early["upload"] is None and early["errors"][0]["code"] == "UPLOAD_NOT_RECEIVED"
    await files.put(asked["ticket"], secret)  # with the bytes, it is theirs too, kept once
    sent = await files.confirm(asked["upload"]["id"], as_="agent-2")
    assert sent["errors"] == [] and sent["upload"]["status"] == "CONFIRMED"
    assert await StoredObject.filter(sha256=hashlib.sha256(secret).hexdigest()).count() == 1
    # The project's own agent holds them through the project: confirmed at once.
    mine = await material_target(site["project"], code)
    again = await files.request(secret, as_="agent", target=mine)
    assert again["ticket"] is None and again["upload"]["status"] == "CONFIRMED"
