# Cross build for ARM32 hard-float (Raspberry Pi class) with Debian 12's arm-linux-gnueabihf toolchain.
# Libraries come from a sysroot filled by make-sysroot.sh from Debian's own armhf packages,
# so the host needs no multiarch install in lock-step with its own packages.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)

get_filename_component(_ga_src "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(GA_ARMHF_SYSROOT "${_ga_src}/build/sysroot-armhf" CACHE PATH "armhf libraries from Debian packages")
if(NOT EXISTS "${GA_ARMHF_SYSROOT}/.complete")
  execute_process(COMMAND "${CMAKE_CURRENT_LIST_DIR}/make-sysroot.sh" armhf "${GA_ARMHF_SYSROOT}"
                  RESULT_VARIABLE _ga_rc)
  if(NOT _ga_rc EQUAL 0)
    message(FATAL_ERROR "could not fill the armhf sysroot at ${GA_ARMHF_SYSROOT}")
  endif()
endif()

set(CMAKE_FIND_ROOT_PATH "${GA_ARMHF_SYSROOT}" /usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(_ga_libdir "${GA_ARMHF_SYSROOT}/usr/lib/arm-linux-gnueabihf")
# Transitive shared-library dependencies (libmbedx509 under libmbedtls, ...) live in the sysroot too.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_ga_libdir}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_ga_libdir}")

find_program(GA_QEMU_ARM NAMES qemu-arm-static qemu-arm REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR
    "${GA_QEMU_ARM};-L;/usr/arm-linux-gnueabihf;-E;LD_LIBRARY_PATH=${_ga_libdir}")
