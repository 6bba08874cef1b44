"""Every router of the site's pages, as ``"module:attribute"``: :func:`hub.web.app.create_site` includes each.
One line per router; an area adds its own."""

PAGE_ROUTERS: tuple[str, ...] = (
    "hub.web.session:router",
    "hub.web.console:router",
    "hub.web.alerts:router",
    "hub.web.verify:router",
)
