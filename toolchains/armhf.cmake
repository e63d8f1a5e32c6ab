# Cross build for ARM32 hard-float (Raspberry Pi class) with Debian 12's arm-linux-gnueabihf
# toolchain; the scheme is debian-cross.cmake's.
set(_ga_arch armhf)
set(_ga_triplet arm-linux-gnueabihf)
set(_ga_processor arm)
set(_ga_qemu qemu-arm-static qemu-arm)
include("${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake")
