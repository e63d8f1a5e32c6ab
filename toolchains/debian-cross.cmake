# The one cross-build scheme for every ARM target, included by armhf.cmake and arm64.cmake after
# they set _ga_arch (Debian architecture), _ga_triplet (GNU triplet of Debian's cross toolchain),
# _ga_processor (CMAKE_SYSTEM_PROCESSOR) and _ga_qemu (qemu-user program names). Libraries come
# from a sysroot that make-sysroot.sh fills from Debian's own packages, so the host needs no
# multiarch install in lock-step with its own packages; tests run under qemu-user.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${_ga_processor})
set(CMAKE_LIBRARY_ARCHITECTURE ${_ga_triplet})
set(CMAKE_C_COMPILER ${_ga_triplet}-gcc)
set(CMAKE_CXX_COMPILER ${_ga_triplet}-g++)

get_filename_component(_ga_src "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(GA_SYSROOT "${_ga_src}/build/sysroot-${_ga_arch}" CACHE PATH "${_ga_arch} libraries from Debian packages")
if(NOT EXISTS "${GA_SYSROOT}/.complete")
  execute_process(COMMAND "${CMAKE_CURRENT_LIST_DIR}/make-sysroot.sh" ${_ga_arch} "${GA_SYSROOT}"
                  RESULT_VARIABLE _ga_rc)
  if(NOT _ga_rc EQUAL 0)
    message(FATAL_ERROR "could not fill the ${_ga_arch} sysroot at ${GA_SYSROOT}")
  endif()
endif()

set(CMAKE_FIND_ROOT_PATH "${GA_SYSROOT}" /usr/${_ga_triplet})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(_ga_libdir "${GA_SYSROOT}/usr/lib/${_ga_triplet}")
# Transitive shared-library dependencies (libmbedx509 under libmbedtls, ...) live in the sysroot too.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_ga_libdir}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${_ga_libdir}")

find_program(GA_QEMU NAMES ${_ga_qemu} REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR "${GA_QEMU};-L;/usr/${_ga_triplet};-E;LD_LIBRARY_PATH=${_ga_libdir}")
