# Debian packages, one per install component (cmake/IpckitInstall.cmake):
#   libipckit       the shared library (configure with BUILD_SHARED_LIBS=ON)
#   libipckit-dev   headers (C++ and the C API), the .so link, CMake and pkg-config files
#   ipckit          the tool, its man page and bash completion
#   python3-ipckit  the Python package, for Debian's python3
# Built by `cpack -G DEB` in a build configured for /usr (scripts/package-test.sh shows the
# whole command line and checks the result). Dependencies on other packages come from
# dpkg-shlibdeps; those between these four are exact versions.
set(CPACK_PACKAGE_NAME ipckit)
set(CPACK_PACKAGE_VENDOR ipckit)
set(CPACK_PACKAGE_CONTACT "ipckit maintainers <ipckit@invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev tool)
if(TARGET ipckit_python)
  list(APPEND CPACK_COMPONENTS_ALL python)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)  # debug information stays in the build, not in the packages
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The tool and the module link libipckit.so.0 of the lib component, which no installed
# package provides yet: dpkg-shlibdeps is told where it is, and the exact dependency is
# written below instead.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS
  "${PROJECT_BINARY_DIR}/_CPack_Packages/Linux/DEB/${CPACK_PACKAGE_NAME}-${PROJECT_VERSION}-Linux/lib/usr/${CMAKE_INSTALL_LIBDIR}"
  "${PROJECT_BINARY_DIR}")
set(ipckit_exact "libipckit (= ${PROJECT_VERSION})")

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libipckit)
set(CPACK_DEBIAN_LIB_DESCRIPTION "ipckit: inter-process communication toolkit for Linux (shared library)
 Every Linux IPC mechanism behind one message API named by an address string
 (pipes, FIFOs, queues, shared-memory rings and topics, sockets, NATS), with a C API.")
set(CPACK_DEBIAN_LIB_PACKAGE_GENERATE_SHLIBS ON)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libipckit-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${ipckit_exact}")
set(CPACK_DEBIAN_DEV_DESCRIPTION "ipckit: inter-process communication toolkit for Linux (development files)
 C++20 headers, the C API (ipckit/ipckit.h), CMake package (find_package(ipckit)) and
 pkg-config files (ipckit for C++, ipckit-c for C).")

set(CPACK_DEBIAN_TOOL_PACKAGE_NAME ipckit)
set(CPACK_DEBIAN_TOOL_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_TOOL_PACKAGE_DEPENDS "${ipckit_exact}")
set(CPACK_DEBIAN_TOOL_DESCRIPTION "ipckit: send, receive, bridge, list, remove and benchmark IPC channels
 The ipckit command-line tool: ipckit send/recv/bench/ls/rm/bridge over every Linux IPC
 mechanism, with a man page and bash completion.")

set(CPACK_DEBIAN_PYTHON_PACKAGE_NAME python3-ipckit)
set(CPACK_DEBIAN_PYTHON_PACKAGE_SECTION python)
if(TARGET ipckit_python)
  # The module is built for one minor version of Python (its ABI): that one only.
  math(EXPR python_next_minor "${IPCKIT_PYTHON_MINOR} + 1")
  set(CPACK_DEBIAN_PYTHON_PACKAGE_DEPENDS
    "${ipckit_exact}, python3 (>= 3.${IPCKIT_PYTHON_MINOR}), python3 (<< 3.${python_next_minor})")
endif()
set(CPACK_DEBIAN_PYTHON_DESCRIPTION "ipckit: inter-process communication toolkit for Linux (Python 3 module)
 import ipckit: the same channels from Python, zero copy with NumPy (optional).")

include(CPack)
