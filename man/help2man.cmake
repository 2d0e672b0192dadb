# cmake -DHELP2MAN=... -DPROGRAM=... -DSUMMARY=... -DINCLUDE=... -DOUTPUT=page.8.gz -P help2man.cmake
# Writes PROGRAM's man page (section 8, gzip -9n as Debian installs them). A
# program with subcommands (bpfwardenctl) gets a COMMANDS section holding
# each subcommand's --help, as listed by its own --help.
get_filename_component(name "${PROGRAM}" NAME)
set(include "${OUTPUT}.h2m")
file(READ "${INCLUDE}" common)
file(WRITE "${include}" "${common}")

execute_process(COMMAND "${PROGRAM}" --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} --help failed (${rc})")
endif()
# "  status            bpfwardend and ..." lines name the subcommands.
string(REGEX MATCHALL "\n  [a-z][a-z-]+   +" listed "${help}")
if(listed)
  file(APPEND "${include}" "[COMMANDS]\n")
  foreach(line ${listed})
    string(STRIP "${line}" command)
    execute_process(COMMAND "${PROGRAM}" ${command} --help OUTPUT_VARIABLE text RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${PROGRAM} ${command} --help failed (${rc})")
    endif()
    # Verbatim in roff: backslashes escaped, no line read as a request.
    string(REPLACE "\\" "\\e" text "${text}")
    string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
    file(APPEND "${include}" ".SS ${command}\n.nf\n${text}.fi\n")
  endforeach()
endif()

execute_process(COMMAND "${HELP2MAN}" --no-info --section 8 --name "${SUMMARY}" --include "${include}"
                        --output "${OUTPUT}.tmp" "${PROGRAM}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed for ${PROGRAM}")
endif()
execute_process(COMMAND gzip -9n -c "${OUTPUT}.tmp" OUTPUT_FILE "${OUTPUT}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip failed for ${OUTPUT}")
endif()
file(REMOVE "${OUTPUT}.tmp" "${include}")
