"""The bundled jobs. Every module here is imported on start; its `@job` functions are registered."""
