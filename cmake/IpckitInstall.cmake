# Installs the library so that another project can use it with
#   find_package(ipckit) + target_link_libraries(app ipckit::ipckit)
# or with pkg-config (`pkg-config --cflags --libs ipckit`).
include(CMakePackageConfigHelpers)

#
# Components, one per Debian package (cmake/IpckitPackaging.cmake): `lib` the shared library
# (libipckit), `dev` headers, the static library or the .so link, CMake and pkg-config files
# (libipckit-dev), `tool` the ipckit program, its man page and bash completion (ipckit),
# `python` the Python package (python3-ipckit).
install(TARGETS ipckit EXPORT ipckitTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT lib)
install(DIRECTORY include/ipckit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(EXPORT ipckitTargets NAMESPACE ipckit:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ipckit COMPONENT dev)

configure_package_config_file(cmake/ipckitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ipckitConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ipckit)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ipckitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ipckitConfig.cmake ${PROJECT_BINARY_DIR}/ipckitConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ipckit COMPONENT dev)

# The .pc file finds its prefix from where it lies (${pcfiledir}), so the tree works wherever
# `cmake --install --prefix` put it, not only at the prefix known when configuring.
file(RELATIVE_PATH IPCKIT_PC_TO_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" IPCKIT_PC_TO_PREFIX "${IPCKIT_PC_TO_PREFIX}")
configure_file(cmake/ipckit.pc.in ${PROJECT_BINARY_DIR}/ipckit.pc @ONLY)
# ipckit-c.pc: the C API (ipckit/ipckit.h) for C compilers, without the C++ flags. A static
# library brings its C++ runtime and system libraries to the C link.
if(NOT BUILD_SHARED_LIBS)
  set(IPCKIT_PC_C_STATIC_LIBS "-lstdc++ -lpthread -lrt ${IPCKIT_PC_NATS_LIBS}")
endif()
configure_file(cmake/ipckit-c.pc.in ${PROJECT_BINARY_DIR}/ipckit-c.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ipckit.pc ${PROJECT_BINARY_DIR}/ipckit-c.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
