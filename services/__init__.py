"""What the JSON API and the web console both do: submit a case, act on a task, read an
inbox, supervise, publish catalogue versions. No HTTP here; the routes and console pages
are thin adapters."""
