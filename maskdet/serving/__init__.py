"""The web page and HTTP API (python serve.py): the detector of detect.py behind FastAPI.

Needs the packages of requirements-serve.txt (fastapi, uvicorn, python-multipart, av); the rest
of maskdet does not, so the light detection install stays light.
"""
