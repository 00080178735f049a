# redmap_vmlinux_h(): generate ${REDMAP_BPF_GEN_DIR}/vmlinux.h from the running
# kernel's BTF (/sys/kernel/btf/vmlinux, or REDMAP_VMLINUX_BTF) with bpftool.
# CO-RE relocations make the resulting objects portable to other kernels, so
# the header only has to describe *a* kernel with the fields we read.
#
# redmap_bpf_object(NAME <name> SOURCE <file.bpf.c> [DEPENDS headers...])
#   Compiles <file.bpf.c> with clang (-g -O2 -target bpf, a depfile so edits to
#   included headers rebuild it), generates <name>.skel.h with
#   `bpftool gen skeleton`, and exposes both as the INTERFACE library
#   <name>_skel (include "<name>.skel.h"). Everything goes to the build tree.

find_program(BPF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
set(REDMAP_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "BTF to generate vmlinux.h from")
set(REDMAP_BPF_GEN_DIR "${CMAKE_BINARY_DIR}/bpf")
file(MAKE_DIRECTORY "${REDMAP_BPF_GEN_DIR}")

add_custom_command(
  OUTPUT "${REDMAP_BPF_GEN_DIR}/vmlinux.h"
  COMMAND "${BPFTOOL}" btf dump file "${REDMAP_VMLINUX_BTF}" format c > "${REDMAP_BPF_GEN_DIR}/vmlinux.h.tmp"
  COMMAND ${CMAKE_COMMAND} -E rename "${REDMAP_BPF_GEN_DIR}/vmlinux.h.tmp" "${REDMAP_BPF_GEN_DIR}/vmlinux.h"
  COMMENT "Generating vmlinux.h from ${REDMAP_VMLINUX_BTF}"
  VERBATIM)
add_custom_target(redmap_vmlinux_h DEPENDS "${REDMAP_BPF_GEN_DIR}/vmlinux.h")

function(redmap_bpf_object)
  cmake_parse_arguments(ARG "" "NAME;SOURCE" "DEPENDS" ${ARGN})
  set(obj "${REDMAP_BPF_GEN_DIR}/${ARG_NAME}.bpf.o")
  set(skel "${REDMAP_BPF_GEN_DIR}/${ARG_NAME}.skel.h")
  get_filename_component(src "${ARG_SOURCE}" ABSOLUTE)
  get_filename_component(src_dir "${src}" DIRECTORY)
  add_custom_command(
    OUTPUT "${obj}"
    COMMAND "${BPF_CLANG}" -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86
            -I "${REDMAP_BPF_GEN_DIR}" -I "${src_dir}"
            -MD -MF "${obj}.d"
            -c "${src}" -o "${obj}"
    DEPFILE "${obj}.d"
    DEPENDS "${src}" "${REDMAP_BPF_GEN_DIR}/vmlinux.h" ${ARG_DEPENDS}
    COMMENT "BPF ${ARG_NAME}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT "${skel}"
    COMMAND "${BPFTOOL}" gen skeleton "${obj}" name "${ARG_NAME}" > "${skel}.tmp"
    COMMAND ${CMAKE_COMMAND} -E rename "${skel}.tmp" "${skel}"
    DEPENDS "${obj}"
    COMMENT "Skeleton ${ARG_NAME}.skel.h"
    VERBATIM)
  add_custom_target(${ARG_NAME}_skel_gen DEPENDS "${skel}")
  add_library(${ARG_NAME}_skel INTERFACE)
  add_dependencies(${ARG_NAME}_skel ${ARG_NAME}_skel_gen)
  target_include_directories(${ARG_NAME}_skel INTERFACE "${REDMAP_BPF_GEN_DIR}")
endfunction()
