"""A small in-process Kubernetes API server for tests and the demo, speaking enough of the
REST API for the official `kubernetes` Python client.

Objects live in one generic store keyed by (resource, namespace, name), with one
global resourceVersion counter and an event history, the way etcd backs the real
server (`store`).  Supported for every registered resource (pods, namespaces, nodes,
resourcequotas, configmaps by default; `register()` adds more), by `rest` and `watch`:

- GET list (`/api/v1/pods`, `/api/v1/namespaces/<ns>/pods`) with `fieldSelector`
  (`a.b=v`, `a.b!=v`, comma-separated) and `labelSelector` (`k=v`, `k!=v`, `k`),
  returning `metadata.resourceVersion`;
- GET watch (`?watch=1&resourceVersion=N&allowWatchBookmarks=true&timeoutSeconds=T`):
  chunked, newline-delimited ADDED/MODIFIED/DELETED/BOOKMARK events; a watch from
  a compacted resourceVersion gets an ERROR event with a 410 Status, as the real
  server sends it; an object leaving the field selector arrives as DELETED;
- GET/PUT/PATCH (JSON merge)/DELETE of one object, POST to a collection.

Scripting for tests (`server`): `add_pod`, `modify_pod`, `delete_pod`, `put_namespace`,
`set_node`, `compact()`, `send_bookmark()`, `drop_watches()`, `outage()` (503 to
every request, open watches closed), `fail_next(...)` (e.g. HTTP 410 on a list),
and `requests` (every request seen, for asserting resume resourceVersions).
`write_kubeconfig()` writes a kubeconfig pointing at the server over plain http.
It serves through `gpucost_testing.http_fixture`, like every other stand-in.
"""

from .objects import DEFAULT_RESOURCES, JsonObject, Resource, SeenRequest
from .server import FakeApiServer

__all__ = ["DEFAULT_RESOURCES", "FakeApiServer", "JsonObject", "Resource", "SeenRequest"]
