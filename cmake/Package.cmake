# The Debian package, built by CPack's DEB generator from the very install
# rules `cmake --install` runs, so a package and a source install cannot
# differ. Maintainer scripts: packaging/deb/ (key handling, enforcement on
# upgrade and removal: README.md, "Installing"). Target `deb` makes it, for a
# build configured for prefix /usr (the only one a Debian package may use);
# scripts/build.sh builds it. Not part of `all`: cpack builds `all` itself
# (its preinstall step) before it installs.
file(GLOB docs CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/docs/*.md")
install(FILES "${PROJECT_SOURCE_DIR}/README.md" ${docs} DESTINATION "${CMAKE_INSTALL_DOCDIR}")

set(package_scripts "${CMAKE_BINARY_DIR}/packaging/deb")
foreach(script postinst prerm postrm)
  configure_file("${PROJECT_SOURCE_DIR}/packaging/deb/${script}.in" "${package_scripts}/${script}" @ONLY
                 FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
                                  WORLD_EXECUTE)
endforeach()
file(WRITE "${package_scripts}/conffiles" "${BPFWARDEN_CONFIG_DIR}/policy.d/00-default.toml\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bpfwarden)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR bpfwarden)
set(CPACK_PACKAGE_CONTACT "bpfwarden maintainers <root@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "kernel-enforced security policy built on eBPF (BPF LSM)")
# The summary is the synopsis line; this is the extended description.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "bpfwardend loads signed BPF LSM programs that refuse file opens, executions
and bpf() program loads named by the admin's policy, pins them so they keep
enforcing when the daemon is gone, and audits every bpf() call and execution.
bpfwarden-watchdog verifies and heals the pinned programs and maps;
bpfwardenctl is the admin tool. On install a per-host signing key is made
and the images are signed with it.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Shared libraries from dpkg-shlibdeps; the maintainer scripts need
# deb-systemd-helper/-invoke; the D-Bus interface needs a system bus.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "init-system-helpers (>= 1.54~)")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd, dbus")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${package_scripts}/postinst;${package_scripts}/prerm;${package_scripts}/postrm;${package_scripts}/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Stripped binaries (1.6 MB instead of 40 MB each): a 2 MB package, made in seconds.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
# Some destinations are absolute (/etc, the unit directory): install with
# DESTDIR into the staging tree, prefix unchanged.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}/package")
set(CPACK_OUTPUT_CONFIG_FILE "${CMAKE_BINARY_DIR}/CPackConfig.cmake")
include(CPack)

# The package file, rebuilt only when something it holds changed.
execute_process(COMMAND dpkg --print-architecture OUTPUT_VARIABLE deb_arch OUTPUT_STRIP_TRAILING_WHITESPACE)
set(BPFWARDEN_DEB "${CPACK_PACKAGE_DIRECTORY}/bpfwarden_${PROJECT_VERSION}_${deb_arch}.deb")
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  file(GLOB_RECURSE packaged_sources CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/packaging/*"
       "${PROJECT_SOURCE_DIR}/units/*" "${PROJECT_SOURCE_DIR}/docs/*.md")
  add_custom_command(
    OUTPUT "${BPFWARDEN_DEB}"
    COMMAND "${CMAKE_CPACK_COMMAND}" --config "${CMAKE_BINARY_DIR}/CPackConfig.cmake" -G DEB
    COMMAND "${CMAKE_COMMAND}" -E rm -rf "${CPACK_PACKAGE_DIRECTORY}/_CPack_Packages"
    DEPENDS bpfwardend bpfwarden-watchdog bpfwardenctl ${BPFWARDEN_MAN_PAGES} ${packaged_sources}
            "${CMAKE_BINARY_DIR}/CPackConfig.cmake"
            "${BPF_IMAGE_OUTPUT_DIR}/manifest" "${PROJECT_SOURCE_DIR}/README.md" "${PROJECT_SOURCE_DIR}/policy/default.toml"
    COMMENT "Debian package ${BPFWARDEN_DEB}"
    VERBATIM)
  add_custom_target(deb DEPENDS "${BPFWARDEN_DEB}")
  add_dependencies(deb signed_images man_pages)
else()
  add_custom_target(deb
    COMMAND "${CMAKE_COMMAND}" -E echo "deb: a Debian package installs under /usr: configure with -DCMAKE_INSTALL_PREFIX=/usr (this build: ${CMAKE_INSTALL_PREFIX})"
    COMMAND false
    VERBATIM)
endif()
