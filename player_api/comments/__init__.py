"""Live comments: one channel per playable item (its Asset id), WebSocket and SSE fan-out
through Redis pub/sub, recent history in Redis Streams, every accepted message archived in
SQL, and moderation (rate limit, slow mode, channel modes, blocked terms, moderator actions).

Modules: ``text`` (cleaning and matching), ``model`` (messages, settings, errors, event
JSON), ``redis_store`` (history, overlays, admission, publishing), ``archive`` (SQL),
``hub`` (this process's fan-out), ``service`` (posting and moderation), ``routes``.
"""
