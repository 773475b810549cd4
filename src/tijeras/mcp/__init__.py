"""tijeras over the Model Context Protocol: segmentation tools for language-model clients.

``build_server(model_loader)`` makes the server; ``main()`` serves it over stdio
(``python -m tijeras.mcp --model sam3 --checkpoint sam3.pt``). Needs the optional ``mcp``
package (``pip install 'tijeras[mcp]'``); this package imports it only when a server is built.
"""

from .server import build_server, main

__all__ = ["build_server", "main"]
