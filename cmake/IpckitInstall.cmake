# Installs the library so that another project can use it with
#   find_package(ipckit) + target_link_libraries(app ipckit::ipckit)
# or with pkg-config (`pkg-config --cflags --libs ipckit`).
include(CMakePackageConfigHelpers)

install(TARGETS ipckit EXPORT ipckitTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/ipckit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT ipckitTargets NAMESPACE ipckit:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ipckit)

configure_package_config_file(cmake/ipckitConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ipckitConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ipckit)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ipckitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ipckitConfig.cmake ${PROJECT_BINARY_DIR}/ipckitConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/ipckit)

# The .pc file finds its prefix from where it lies (${pcfiledir}), so the tree works wherever
# `cmake --install --prefix` put it, not only at the prefix known when configuring.
file(RELATIVE_PATH IPCKIT_PC_TO_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" IPCKIT_PC_TO_PREFIX "${IPCKIT_PC_TO_PREFIX}")
configure_file(cmake/ipckit.pc.in ${PROJECT_BINARY_DIR}/ipckit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ipckit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
