"""The build's stages, one file each, each `run(ctx) -> ctx`; pipeline.py lists them in order.

Of edgepack's modules only pipeline.py imports these; the work itself lives in the libraries they call.
"""
