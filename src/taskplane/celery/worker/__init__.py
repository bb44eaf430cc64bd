"""What runs inside a worker process: consumer hooks, request hooks, and the maintenance bootstep."""
