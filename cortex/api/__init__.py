"""The CORTEX REST service: `create_app(settings)` builds the FastAPI app that `cortex serve` runs.

from cortex.api import create_app
app = create_app(cortex.Settings.load("~/.cortex"))   # uvicorn.run(app)
"""

from cortex.api.app import create_app

__all__ = ["create_app"]
