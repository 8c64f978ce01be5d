"""`cis`, the command line of the Cloud Image Service (`pip install cloud-image-client[cli]`)."""
