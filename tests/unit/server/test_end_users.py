"""Who a request acts as when it names an end user, and that every API route asks."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from app.server.app import create_app
from app.server.auth import Principal
from app.server.deps import owner_of
from app.server.end_users import acting_for
from app.server.errors import ApiError
from app.server.platform import KEY_PATHS
from tests.unit.server.test_route_dependencies import calls

FRONT_END = Principal(
    key_id="k1", tenant_id="acme", user_id="webui", groups=("eng",), scopes=("chat", "end_users")
)
PLAIN = Principal(key_id="k2", tenant_id="acme", user_id="alice", scopes=("chat", "ingest"))


def test_an_end_user_is_namespaced_under_the_key_user_in_the_key_tenant() -> None:
    acting = acting_for(FRONT_END, ("user", "ada"))
    assert (acting.tenant_id, acting.user_id, acting.end_user) == ("acme", "webui/ada", "ada")
    assert acting.groups == ("eng",) and acting.key_id == "k1"  # no group gained
    assert owner_of(acting) == "acme/webui/ada" != owner_of(FRONT_END)
    assert acting_for(FRONT_END, None) is FRONT_END


def test_a_key_without_the_scope_names_only_its_own_user() -> None:
    assert acting_for(PLAIN, ("user", "alice")) is PLAIN
    with pytest.raises(ApiError) as caught:
        acting_for(PLAIN, ("X-Ragent-User", "bob"))
    assert (caught.value.status, caught.value.code, caught.value.param) == (
        400,
        "end_users_not_allowed",
        "X-Ragent-User",
    )


def api_routes() -> list[APIRoute]:
    """Every route of the app that needs a key, those of included routers too."""
    found: list[APIRoute] = []
    pending = list(create_app().routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # FastAPI's include_router
        if included is not None:
            pending.extend(included.routes)
        elif isinstance(route, APIRoute) and route.path.startswith(("/v1/", *KEY_PATHS)):
            found.append(route)
    return found


def test_every_api_route_resolves_the_caller() -> None:
    """The end user (and their rate limit) comes from the ``_principal`` dependency."""
    api = api_routes()
    assert len(api) >= 10 and any(r.path.startswith(KEY_PATHS) for r in api)
    missing = [r.path for r in api if "_principal" not in {c.__name__ for c in calls(r.dependant)}]
    assert missing == []
