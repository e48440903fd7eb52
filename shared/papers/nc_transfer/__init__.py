"""Paper ``nc_transfer``: Understanding and Improving Transfer Learning of Deep Models via Neural Collapse."""
