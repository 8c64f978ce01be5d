"""`python -m cloud_image_service.cli`."""

from cloud_image_service.cli.main import main

main()
