"""The dashboard's services; ``services.common.secrets`` is the documented import path."""
