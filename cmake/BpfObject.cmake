# bpf_object(<name> <source>)
#
# Compiles a BPF C source with clang for the BPF target, links it with
# `bpftool gen object` into ${BPF_IMAGE_OUTPUT_DIR}/<name>.bpf.o (the image the
# daemon loads) and generates ${BPF_SKELETON_DIR}/<name>.skel.h, whose C type
# (and the object's name in the kernel) is bpfw_<name>: libbpf names an object's
# .bss and .rodata maps after its first 8 characters ("bpfw_fil.bss"), so every
# map we create starts with "bpfw_", which the self-protection programs look
# for. Each step is
# its own custom command with its own output: one command writing several
# outputs races under parallel builds.
#
# Exposes an INTERFACE library `bpf_<name>` that carries the skeleton include
# directory and the dependency on the generated header.

find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(BPF_IMAGE_OUTPUT_DIR "${CMAKE_BINARY_DIR}/bpf/images")
set(BPF_SKELETON_DIR "${CMAKE_BINARY_DIR}/bpf/skeletons")
file(MAKE_DIRECTORY "${BPF_IMAGE_OUTPUT_DIR}" "${BPF_SKELETON_DIR}")

function(bpf_object name source)
  set(intermediate "${CMAKE_CURRENT_BINARY_DIR}/${name}.tmp.o")
  set(image "${BPF_IMAGE_OUTPUT_DIR}/${name}.bpf.o")
  set(skeleton "${BPF_SKELETON_DIR}/${name}.skel.h")
  file(GLOB_RECURSE bpf_headers CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/bpf/include/*.h")

  add_custom_command(
    OUTPUT "${intermediate}"
    COMMAND "${BPF_CLANG}" -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror
            -I "${BPF_VMLINUX_DIR}" -I "${PROJECT_SOURCE_DIR}/bpf/include"
            -c "${CMAKE_CURRENT_SOURCE_DIR}/${source}" -o "${intermediate}"
    DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/${source}" ${bpf_headers} "${BPF_VMLINUX_DIR}/vmlinux.h"
    COMMENT "BPF ${source}"
    VERBATIM)
  add_custom_command(
    OUTPUT "${image}"
    COMMAND "${BPFTOOL}" gen object "${image}" "${intermediate}"
    DEPENDS "${intermediate}"
    COMMENT "BPF image ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT "${skeleton}"
    COMMAND sh -c "\"$1\" gen skeleton \"$2\" name \"$3\" > \"$4.tmp\" && mv \"$4.tmp\" \"$4\""
            sh "${BPFTOOL}" "${image}" "bpfw_${name}" "${skeleton}"
    DEPENDS "${image}"
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(bpf_${name}_gen DEPENDS "${skeleton}" "${image}")
  add_library(bpf_${name} INTERFACE)
  target_include_directories(bpf_${name} INTERFACE "${BPF_SKELETON_DIR}")
  add_dependencies(bpf_${name} bpf_${name}_gen)
  install(FILES "${image}" DESTINATION "${BPFWARDEN_IMAGE_DIR}")
endfunction()
