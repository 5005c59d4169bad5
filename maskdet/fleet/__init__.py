"""Many cameras, many sites (monitor.py): camera workers as Ray actors, one store for all of them.

cameras.py reads and checks the cameras file; worker.py is one worker (one copy of the model, several
cameras, the per-frame pipeline for each); runner.py is the driver that paces the cameras and writes
the results; store.py is the store (SQLite or PostgreSQL) the fleet page (maskdet/serving/fleet.py) reads.
"""
