# Cross build for 64-bit ARM (arm64/aarch64) with Debian 12's aarch64-linux-gnu toolchain.
# Same scheme as armhf.cmake: libraries from a sysroot filled by make-sysroot.sh from Debian's own
# arm64 packages, tests under qemu-aarch64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

get_filename_component(_ga_src "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(GA_ARM64_SYSROOT "${_ga_src}/build/sysroot-arm64" CACHE PATH "arm64 libraries from Debian packages")
if(NOT EXISTS "${GA_ARM64_SYSROOT}/.complete")
  execute_process(COMMAND "${CMAKE_CURRENT_LIST_DIR}/make-sysroot.sh" arm64 "${GA_ARM64_SYSROOT}"
                  RESULT_VARIABLE _ga_rc)
  if(NOT _ga_rc EQUAL 0)
    message(FATAL_ERROR "could not fill the arm64 sysroot at ${GA_ARM64_SYSROOT}")
  endif()
endif()

set(CMAKE_FIND_ROOT_PATH "${GA_ARM64_SYSROOT}" /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(_ga_libdir "${GA_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu")
# Transitive shared-library dependencies (libmbedx509 under libmbedtls, ...) live in the sysroot too.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_ga_libdir}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_ga_libdir}")

find_program(GA_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64 REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR
    "${GA_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu;-E;LD_LIBRARY_PATH=${_ga_libdir}")
