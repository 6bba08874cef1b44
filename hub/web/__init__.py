"""The hub's pages, served by the hub itself: the ops console (``/console``, people logged in) and the public
verification pages, server-rendered with Jinja2 and a little htmx. ``create_site(broker)`` (:mod:`hub.web.app`)
is the API plus the pages."""
