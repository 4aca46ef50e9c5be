# The Debian package of the studio and the CLI, made by CPack:
#   cpack --config build/CPackConfig.cmake   (packaging/make-deb.sh does it)
# Runtime dependencies come from dpkg-shlibdeps (the ELF files' libraries,
# LibTorch and Qt included), plus what is loaded without being linked.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sparse-mixer-studio)
set(CPACK_PACKAGE_VENDOR "Sparse Mixer Studio developers")
set(CPACK_PACKAGE_CONTACT "Sparse Mixer Studio developers <maintainers@sparse-mixer-studio.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "train, inspect and teach Mixture-of-Experts encoders")
set(CPACK_PACKAGE_DESCRIPTION
"Sparse Mixer Studio trains Sparse Mixer models (BERT-like encoders whose
attention is mostly replaced by linear mixing and some of whose feed-forward
layers are Mixture-of-Experts), BERT and sparse BERT with LibTorch, and shows
live which tokens each expert chooses, expert capacity, the mixing matrices
and training stability.

This package contains the desktop studio (smx-studio) and the command line
(smx) for headless training, evaluation and benchmarks.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/package)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# One package per Debian release, built on that release: its dependencies are
# that release's libraries (Debian 12: libtorch1.13, Qt 6.4; Debian 13:
# libtorch2.6, Qt 6.8, t64 names), so the revision names the release, as
# backports do: 0.1.0-1+deb12, 0.1.0-1+deb13 (the newer release sorts higher,
# so upgrading Debian upgrades the package). Elsewhere plain 0.1.0-1.
set(SMX_DEBIAN_RELEASE_SUFFIX "")
cmake_host_system_information(RESULT smx_os_id QUERY DISTRIB_ID)
cmake_host_system_information(RESULT smx_os_version QUERY DISTRIB_VERSION_ID)
if(smx_os_id STREQUAL "debian" AND smx_os_version MATCHES "^[0-9]+$")
  set(SMX_DEBIAN_RELEASE_SUFFIX "+deb${smx_os_version}")
endif()
set(CPACK_DEBIAN_PACKAGE_RELEASE "1${SMX_DEBIAN_RELEASE_SUFFIX}")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Private library folder, so that dpkg-shlibdeps resolves the shim's own needs.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS /usr/${SMX_PRIVATE_LIBDIR})
# LibTorch finds its BLAS through the libblas.so.3 alternative, not a link:
# without OpenBLAS it falls back to the reference BLAS, about 20x slower.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libopenblas0-pthread | libopenblas0-openmp")
# The default corpus; without it training needs a corpus file (the engine says so).
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "wordnet-base")

include(CPack)
