"""Where and how the numbers are computed: devices and GPU leases, data-parallel processes, numeric
precision and memory layout, the allocator policy, random streams."""
