"""Ingestion over HTTP: ``POST /v1/ingest`` queues a job, ``GET /v1/jobs/{id}`` follows it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from app.retrieval.types import namespace_tenant
from app.server.api_keys import validate_identity
from app.server.deps import IngestUser, ServicesDep, owner_of
from app.server.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND, ApiError
from app.server.idempotency import idempotent
from app.server.ingestion.fetch import allowed
from app.server.ingestion.upload_checks import FileTooLarge, pieces, refusal
from app.server.ingestion.uploads import Author, safe_name
from app.server.schemas import NAMESPACE_PATTERN

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["ingestion"], responses=ERROR_RESPONSES)


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if k != "owner"}


@router.post(
    "/ingest",
    status_code=202,
    responses=CONFLICT,
    summary="Ingest uploaded files or URLs, as a job",
)
async def ingest(
    request: Request,
    services: ServicesDep,
    principal: IngestUser,
    files: Annotated[list[UploadFile], File(description="Documents to ingest.")] = [],  # noqa: B006
    urls: Annotated[list[str], Form(description="Documents to fetch (allowlisted hosts).")] = [],  # noqa: B006
    namespace: Annotated[str | None, Form(pattern=NAMESPACE_PATTERN)] = None,
    acl: Annotated[str, Form(description="Comma-separated groups allowed to read.")] = "",
) -> Response:
    """Queue an ingestion job (202); poll ``GET /v1/jobs/{id}`` for progress and errors.

    Documents go to the API key's tenant (or one of its namespaces). ``acl`` may name
    only groups the key holds (else 403, nothing written). A document belongs to its
    author: the key's user together with the ACL it assigns. A file or URL re-sent by
    the same author replaces its earlier version (an unchanged one is skipped); sent by
    anyone else, or with another ACL, it becomes a document of its own.
    """
    server = services.settings.server
    if not files and not urls:
        raise ApiError(
            400, "send files (multipart 'files') or 'urls'", "nothing_to_ingest", param="files"
        )
    if len(files) + len(urls) > server.max_upload_files:
        raise ApiError(
            400,
            f"at most {server.max_upload_files} files and URLs per job",
            "too_many_files",
            param="files",
        )
    for url in urls:
        if not allowed(url, [h.lower() for h in server.ingest_url_allowlist]):
            raise ApiError(
                400,
                f"urls: {url[:200]!r} is not http(s) on a host in server.ingest_url_allowlist",
                "url_not_allowed",
                param="urls",
            )
    groups = sorted({g.strip() for g in acl.split(",") if g.strip()})
    try:
        for group in groups:
            validate_identity("group", group)
    except ValueError as exc:
        raise ApiError(400, f"acl: {exc}", "invalid_acl", param="acl") from None
    not_held = [g for g in groups if g not in principal.groups]
    if not_held:
        raise ApiError(
            403,
            f"acl: this API key is not in group {not_held[0]!r}; a key may only assign "
            "groups it holds",
            "acl_group_not_held",
        )
    tenant = namespace_tenant(principal.tenant_id, namespace)
    author = Author.of(owner_of(principal), groups)

    async def produce() -> Response:
        # Refused files are never written; kept ones go again if the request fails before
        # its job owns them; the spooled copies are closed (and so deleted) either way.
        uploads: list[Any] = []  # kept by the job manager: on disk, or queued in Redis
        refused: list[dict[str, str]] = []
        max_bytes = services.settings.ingest.max_file_bytes
        try:
            for index, upload in enumerate(files):
                name = safe_name(upload.filename or "", default=f"upload-{index}")
                reason = refusal(name, upload.size, max_bytes)
                if reason is not None:
                    refused.append({"source": name, "reason": reason})
                    continue
                # Copied in pieces, the limit checked as it goes (no size was sent with
                # the part, or it lied): a refused copy leaves nothing behind.
                data = pieces(upload, max_bytes)
                try:
                    uploads.append(await services.jobs.keep(tenant, name, data, author=author))
                except FileTooLarge as exc:
                    refused.append({"source": name, "reason": str(exc)})
            job = await services.jobs.submit(
                owner=owner_of(principal),
                tenant=tenant,
                uploads=uploads,
                urls=list(urls),
                acl=groups,
                namespace=namespace,
                refused=refused,
            )
        except BaseException:
            await services.jobs.discard(uploads)
            raise
        finally:
            for upload in files:
                await upload.close()
        return JSONResponse(
            _public(job), status_code=202, headers={"Location": f"/v1/jobs/{job['id']}"}
        )

    return await idempotent(request, services, principal, produce)


@router.get(
    "/jobs/{job_id}", responses=NOT_FOUND, summary="An ingestion job's status, progress and errors"
)
async def get_job(
    job_id: Annotated[str, Path(pattern=r"^job_[0-9a-f]{32}$")],
    services: ServicesDep,
    principal: IngestUser,
) -> Any:
    """Status (queued, running, succeeded, failed), progress and per-file errors."""
    job = await services.jobs.get(owner_of(principal), job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id!r}", "not_found")
    return _public(job)
