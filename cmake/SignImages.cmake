# Signs the build's BPF images with a development key, so that bpfwardend
# (which loads nothing unsigned) runs from the build tree. The key is created
# once per build tree under ${BPFWARDEN_DEV_KEY_DIR}; installed hosts trust
# their own keys instead (README.md, "Installing").
set(BPFWARDEN_DEV_KEY_DIR "${CMAKE_BINARY_DIR}/keys")
set(dev_private_key "${BPFWARDEN_DEV_KEY_DIR}/dev-signing.key")
set(dev_public_key "${BPFWARDEN_DEV_KEY_DIR}/trusted/dev-signing.pem")

# No file dependency on bpfwardenctl: a rebuilt tool must not try to recreate
# an existing key (keygen never overwrites).
add_custom_command(
  OUTPUT "${dev_private_key}" "${dev_public_key}"
  COMMAND "${CMAKE_COMMAND}" -E make_directory "${BPFWARDEN_DEV_KEY_DIR}/trusted"
  COMMAND $<TARGET_FILE:bpfwardenctl> keygen --private "${dev_private_key}" --public "${dev_public_key}"
  COMMENT "Development signing key"
  VERBATIM)
add_custom_target(dev_signing_key DEPENDS "${dev_private_key}" "${dev_public_key}")
add_dependencies(dev_signing_key bpfwardenctl)

set(signed_images)
foreach(image policy_maps file_guard exec_guard self_guard lsm_probe bpf_audit exec_audit rule_audit tamper_watch)
  list(APPEND signed_images "${BPF_IMAGE_OUTPUT_DIR}/${image}.bpf.o")
endforeach()
add_custom_command(
  OUTPUT "${BPF_IMAGE_OUTPUT_DIR}/manifest" "${BPF_IMAGE_OUTPUT_DIR}/manifest.sig"
  COMMAND $<TARGET_FILE:bpfwardenctl> sign --key "${dev_private_key}" --images "${BPF_IMAGE_OUTPUT_DIR}"
          --version "${BPFWARDEN_IMAGE_SET_VERSION}"
  DEPENDS ${signed_images} "${dev_private_key}" bpfwardenctl
  COMMENT "Signing BPF images (image-set version ${BPFWARDEN_IMAGE_SET_VERSION})"
  VERBATIM)
add_custom_target(signed_images ALL DEPENDS "${BPF_IMAGE_OUTPUT_DIR}/manifest")
add_dependencies(signed_images dev_signing_key)
foreach(image policy_maps file_guard exec_guard self_guard lsm_probe bpf_audit exec_audit rule_audit tamper_watch)
  add_dependencies(signed_images bpf_${image}_gen)
endforeach()

# Neither the development key nor the manifest it signed is installed: an
# installed host trusts only keys its admin chose (the package's postinst
# creates a per-host key and signs the installed images with it; README.md,
# "Installing").
