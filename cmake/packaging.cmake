# Debian packages with CPack (included from CMakeLists.txt when ZONEGATE_PACKAGE=ON;
# deploy/package.sh drives it). Two packages, one per CPack component:
#
#   zonegate-proxy          the proxy (/usr/bin), its systemd unit, an example config as the
#                           conffile /etc/zonegate/zonegate.yaml, and the maintainer scripts of
#                           cmake/debian/zonegate-proxy/ (system user, generated secrets)
#   postgresql-NN-zonegate  the extension as PGXS installs it (library, LLVM bitcode, control
#                           file, SQL scripts) into pg_config's directories
#
# The extension is built by PGXS, not by CMake: deploy/package.sh builds it and installs it with
# `make install DESTDIR=<ZONEGATE_EXTENSION_STAGE>`; this file packages that staged tree.

set(PG_CONFIG "pg_config" CACHE STRING "pg_config of the PostgreSQL the extension package is for")
set(ZONEGATE_EXTENSION_STAGE "${CMAKE_BINARY_DIR}/extension-stage" CACHE PATH
    "DESTDIR the extension was installed into by `make -C extension install DESTDIR=...`")
set(ZONEGATE_PACKAGE_CONTACT "zonegate maintainers <maintainers@zonegate.invalid>" CACHE STRING
    "Maintainer field of the Debian packages")
set(ZONEGATE_PACKAGE_RELEASE "1" CACHE STRING "Debian revision of the packages")

# The version: the one `zonegate-proxy --version` and zonegate.version() print.
file(STRINGS "${PROJECT_SOURCE_DIR}/extension/core/version.hpp" _zg_version_line
     REGEX "^#define ZONEGATE_VERSION \"[^\"]+\"")
if(NOT _zg_version_line MATCHES "\"(([0-9]+)\\.([0-9]+)\\.([0-9]+)[^\"]*)\"")
  message(FATAL_ERROR "packaging: no ZONEGATE_VERSION in extension/core/version.hpp")
endif()
set(ZONEGATE_PACKAGE_VERSION "${CMAKE_MATCH_1}")

# PostgreSQL's directories and major version, from the same pg_config PGXS used.
find_program(PG_CONFIG_EXECUTABLE NAMES ${PG_CONFIG} REQUIRED)
foreach(_what pkglibdir sharedir version)
  execute_process(COMMAND ${PG_CONFIG_EXECUTABLE} --${_what} OUTPUT_VARIABLE _out
                  OUTPUT_STRIP_TRAILING_WHITESPACE COMMAND_ERROR_IS_FATAL ANY)
  set(PG_${_what} "${_out}")
endforeach()
if(NOT PG_version MATCHES "^PostgreSQL ([0-9]+)")
  message(FATAL_ERROR "packaging: cannot read the major version from `${PG_CONFIG_EXECUTABLE} --version`: ${PG_version}")
endif()
set(PG_MAJOR "${CMAKE_MATCH_1}")

# --- zonegate-proxy --------------------------------------------------------------------------
# (proxy/CMakeLists.txt's own install() rule is the "Unspecified" component, not packaged.)
install(TARGETS zonegate-proxy RUNTIME DESTINATION bin COMPONENT proxy)
install(FILES "${PROJECT_SOURCE_DIR}/deploy/systemd/zonegate-proxy.service"
        DESTINATION /lib/systemd/system COMPONENT proxy)
install(FILES "${PROJECT_SOURCE_DIR}/deploy/zonegate.example.yaml"
        DESTINATION /etc/zonegate RENAME zonegate.yaml COMPONENT proxy)
install(FILES "${PROJECT_SOURCE_DIR}/deploy/zonegate.example.yaml"
        DESTINATION share/doc/zonegate-proxy/examples RENAME zonegate.yaml COMPONENT proxy)
install(FILES "${PROJECT_SOURCE_DIR}/docs/CONFIG.md" "${PROJECT_SOURCE_DIR}/docs/DEPLOYMENT.md"
              "${PROJECT_SOURCE_DIR}/docs/SECURITY.md" "${PROJECT_SOURCE_DIR}/docs/TROUBLESHOOTING.md"
        DESTINATION share/doc/zonegate-proxy COMPONENT proxy)

# --- postgresql-NN-zonegate ------------------------------------------------------------------
# Installed from the staged tree; fails at cpack time with a clear message if it is missing.
install(CODE "
  if(NOT EXISTS \"${ZONEGATE_EXTENSION_STAGE}${PG_pkglibdir}/zonegate.so\" OR
     NOT EXISTS \"${ZONEGATE_EXTENSION_STAGE}${PG_sharedir}/extension/zonegate.control\")
    message(FATAL_ERROR \"packaging: the staged extension is missing under ${ZONEGATE_EXTENSION_STAGE}: \"
                        \"run deploy/package.sh (it runs make -C extension install DESTDIR=...)\")
  endif()" COMPONENT extension)
install(DIRECTORY "${ZONEGATE_EXTENSION_STAGE}${PG_pkglibdir}/"
        DESTINATION "${PG_pkglibdir}" COMPONENT extension USE_SOURCE_PERMISSIONS)
install(DIRECTORY "${ZONEGATE_EXTENSION_STAGE}${PG_sharedir}/extension/"
        DESTINATION "${PG_sharedir}/extension" COMPONENT extension USE_SOURCE_PERMISSIONS)

# --- CPack -----------------------------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "zonegate")
set(CPACK_PACKAGE_VENDOR "zonegate")
set(CPACK_PACKAGE_VERSION "${ZONEGATE_PACKAGE_VERSION}")
set(CPACK_PACKAGE_CONTACT "${ZONEGATE_PACKAGE_CONTACT}")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}/cpack")
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL proxy extension)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${ZONEGATE_PACKAGE_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_PROXY_PACKAGE_NAME "zonegate-proxy")
set(CPACK_DEBIAN_PROXY_PACKAGE_SECTION "net")
set(CPACK_COMPONENT_PROXY_DESCRIPTION
    "HTTP sidecar serving zonegate user context, zones and access checks\n\
zonegate-proxy is a libuv HTTP server in front of PostgreSQL databases with the\n\
zonegate extension: JWT authentication, a response cache kept coherent by\n\
NOTIFY, a PostgREST-compatible /rpc, pooled pipelined connections, retries, a\n\
circuit breaker, deadlines, load shedding, rate limits, health and metrics.\n\
The service runs as the system user zonegate; it is not enabled on install.")
set(CPACK_DEBIAN_PROXY_PACKAGE_SUGGESTS "postgresql-${PG_MAJOR}-zonegate")
set(CPACK_DEBIAN_PROXY_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/cmake/debian/zonegate-proxy/conffiles"
    "${PROJECT_SOURCE_DIR}/cmake/debian/zonegate-proxy/postinst"
    "${PROJECT_SOURCE_DIR}/cmake/debian/zonegate-proxy/prerm"
    "${PROJECT_SOURCE_DIR}/cmake/debian/zonegate-proxy/postrm")

set(CPACK_DEBIAN_EXTENSION_PACKAGE_NAME "postgresql-${PG_MAJOR}-zonegate")
set(CPACK_DEBIAN_EXTENSION_PACKAGE_SECTION "database")
set(CPACK_COMPONENT_EXTENSION_DESCRIPTION
    "zonegate extension for PostgreSQL ${PG_MAJOR}\n\
Zone hierarchy, users and grants: user context, visible zones, access checks\n\
and region filters from a per-backend cache that is invalidated\n\
transactionally. Run CREATE EXTENSION zonegate (superuser) in each database.")
set(CPACK_DEBIAN_EXTENSION_PACKAGE_DEPENDS "postgresql-${PG_MAJOR}")

# Depends of the ELF files from dpkg-shlibdeps, which CPack runs only with `file` installed;
# without it, the Debian 12 names (what dpkg-shlibdeps computes there) are listed.
find_program(ZONEGATE_FILE_EXECUTABLE file)
find_program(ZONEGATE_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(ZONEGATE_FILE_EXECUTABLE AND ZONEGATE_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  message(STATUS "packaging: `file` or dpkg-shlibdeps missing: listing Debian 12's Depends")
  set(CPACK_DEBIAN_PROXY_PACKAGE_DEPENDS
      "libc6 (>= 2.34), libgcc-s1 (>= 3.0), libpq5 (>= 14~~), libssl3 (>= 3.0.0), libstdc++6 (>= 12), libuv1 (>= 1.40.0), libyaml-cpp0.7 (>= 0.7.0)")
  string(APPEND CPACK_DEBIAN_EXTENSION_PACKAGE_DEPENDS
         ", libc6 (>= 2.32), libgcc-s1 (>= 3.0), libstdc++6 (>= 11)")
endif()

include(CPack)
