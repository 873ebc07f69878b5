"""vidfarm core: the ComfyUI client, workflows and their validation, media checks.

Plain Python shared by the node pack, the notebooks, the service and the scripts. Importing it does no I/O.
"""

__version__ = "0.1.0"
