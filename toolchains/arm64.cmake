# Cross build for 64-bit ARM (arm64/aarch64) with Debian 12's aarch64-linux-gnu toolchain; the
# scheme is debian-cross.cmake's.
set(_ga_arch arm64)
set(_ga_triplet aarch64-linux-gnu)
set(_ga_processor aarch64)
set(_ga_qemu qemu-aarch64-static qemu-aarch64)
include("${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake")
