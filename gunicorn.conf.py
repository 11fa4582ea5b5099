"""gunicorn's settings for the web process: `gunicorn screening.wsgi` reads this file from its
working directory (/app in the image; docker-compose.yml's web and the image's CMD start it so).

Threads (gthread): a request waiting on the database, the broker or the object store holds a
thread, not a whole process, and a worker that streams a long upload into storage is not killed
by `timeout` (which, for gthread, watches the worker's main loop, not a request). Slow clients
never reach gunicorn in docker compose: its nginx buffers each request and answer whole.
"""

bind = "0.0.0.0:8000"
worker_class = "gthread"
workers = 4
threads = 4
timeout = 120
# Behind nginx: keep idle upstream connections a little longer than nginx's keepalive to it.
keepalive = 75
