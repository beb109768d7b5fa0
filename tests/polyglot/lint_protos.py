"""Checks that proto/gamegate/v1 has what idiomatic stubs need in every language.

Usage: lint_protos.py DESCRIPTOR_SET   (a FileDescriptorSet of the gamegate/v1 files)

Errors (exit 1): a file option missing or inconsistent across the package (go_package,
java_package, java_multiple_files, java_outer_classname, csharp_namespace, objc_class_prefix);
a java_outer_classname equal to a type of its file; a name that is a keyword of C++, Go, Java,
Python or C# where that language uses the name verbatim (the generators then rename it: `class_`
in C++, ...); a field whose Go name collides with a generated method, or whose Java accessor
collides with a Message method (`getClass_()`); Java accessors of two fields that collide; a field
named like its message in C#; two fields with the same CamelCase name.
Notes (printed, not errors): names that protoc's Objective-C generator renames because they
clash with NSObject methods or ARC method families (`description` -> `description_p`); a
go_package that Go module mode cannot import as it is.
"""

import re
import sys

from google.protobuf import descriptor_pb2

CPP = set("""alignas alignof and and_eq asm atomic_cancel atomic_commit atomic_noexcept auto bitand
bitor bool break case catch char char8_t char16_t char32_t class compl concept const consteval
constexpr constinit const_cast continue co_await co_return co_yield decltype default delete do
double dynamic_cast else enum explicit export extern false float for friend goto if inline int
long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public
reflexpr register reinterpret_cast requires return short signed sizeof static static_assert
static_cast struct switch synchronized template this thread_local throw true try typedef typeid
typename union unsigned using virtual void volatile wchar_t while xor xor_eq
NULL EOF TRUE FALSE DOMAIN linux unix major minor errno assert""".split())
GO = set("""break case chan const continue default defer else fallthrough for func go goto if import
interface map package range return select struct switch type var""".split())
JAVA = set("""abstract assert boolean break byte case catch char class const continue default do
double else enum extends final finally float for goto if implements import instanceof int
interface long native new package private protected public return short static strictfp super
switch synchronized this throw throws transient try void volatile while true false null var
record yield sealed permits""".split())
PYTHON = set("""False None True and as assert async await break class continue def del elif else
except finally for from global if import in is lambda nonlocal not or pass raise return try while
with yield print exec""".split())
CSHARP = set("""abstract as base bool break byte case catch char checked class const continue
decimal default delegate do double else enum event explicit extern false finally fixed float for
foreach goto if implicit in int interface internal is lock long namespace new null object operator
out override params private protected public readonly ref return sbyte sealed short sizeof
stackalloc static string struct switch this throw true try typeof uint ulong unchecked unsafe
ushort using virtual void volatile while""".split())
KEYWORDS = {"C++": CPP, "Go": GO, "Java": JAVA, "Python": PYTHON, "C#": CSHARP}
# Methods of the structs protoc-gen-go generates.
GO_METHODS = {"Reset", "String", "ProtoMessage", "ProtoReflect", "Descriptor"}
# What protoc's Objective-C generator renames (objectivec_helpers.cc, kReservedWords and the
# "special method families" new/alloc/copy/mutableCopy/init).
OBJC_RESERVED = set("""description debugDescription hash class superclass self zone isProxy
retain release autorelease retainCount copy mutableCopy id Protocol SEL IMP BOOL YES NO nil Nil
readonly readwrite atomic nonatomic strong weak assign""".split())
OBJC_FAMILIES = ("new", "alloc", "copy", "mutableCopy", "init")
REQUIRED_OPTIONS = ("go_package", "java_package", "java_multiple_files", "java_outer_classname",
                    "csharp_namespace", "objc_class_prefix")

errors = []
notes = []


def camel(name, upper=True):
    parts = [p for p in re.split(r"_+", name) if p]
    out = "".join(p[:1].upper() + p[1:] for p in parts)
    return out if upper else out[:1].lower() + out[1:]


# Where each language uses a proto name verbatim (elsewhere it is CamelCased or prefixed, which
# keywords cannot collide with): C++ and Python everywhere; Java for types, enum values and
# packages; Go for its package name; C# for type names.
VERBATIM = {
    "C++": {"package", "message", "enum", "enum value", "field", "oneof", "service", "method"},
    "Python": {"package", "message", "enum", "enum value", "field", "oneof", "service", "method"},
    "Java": {"package", "message", "enum", "enum value", "service"},
    "Go": {"package"},
    "C#": {"message", "enum", "service"},
}
# Fields whose Java accessors collide with methods of com.google.protobuf.Message (protoc then
# renames them, e.g. getClass_()).
JAVA_FORBIDDEN_FIELDS = {"class", "cached_size", "serialized_size", "parser_for_type", "default_instance_for_type",
                         "descriptor_for_type", "unknown_fields", "all_fields", "initialization_error_string",
                         "memoized_serialized_size"}


def keyword_check(kind, full_name, name):
    for language, words in KEYWORDS.items():
        if kind in VERBATIM[language] and name in words:
            errors.append(f"{kind} {full_name}: '{name}' is a {language} keyword")
    if kind == "field" and name in JAVA_FORBIDDEN_FIELDS:
        errors.append(f"field {full_name}: its Java accessor collides with a method of Message")


def java_accessors(field, message):
    """Names of the Java members generated for a field (proto3, java_multiple_files)."""
    base = camel(field.name)
    repeated = field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    is_map = False
    if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE:
        nested = field.type_name.rsplit(".", 1)[-1]
        is_map = any(n.name == nested and n.options.map_entry for n in message.nested_type)
    out = {f"get{base}", f"set{base}", f"clear{base}"}
    if is_map:
        out |= {f"get{base}Map", f"get{base}Count", f"contains{base}", f"put{base}", f"remove{base}"}
    elif repeated:
        out |= {f"get{base}List", f"get{base}Count", f"add{base}", f"addAll{base}"}
    if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_ENUM:
        out |= {f"get{base}Value"}
    return out


def check_message(message, prefix):
    full = f"{prefix}.{message.name}"
    keyword_check("message", full, message.name)
    camels, go_names, java_members = {}, {}, {}
    for field in message.field:
        where = f"{full}.{field.name}"
        keyword_check("field", where, field.name)
        go_name = camel(field.name)
        if go_name in GO_METHODS:
            errors.append(f"field {where}: Go name {go_name} collides with a generated method")
        if go_name == message.name:
            errors.append(f"field {where}: C# property {go_name} has the name of its class")
        lower = field.name.replace("_", "").lower()
        if lower in camels:
            errors.append(f"field {where}: same CamelCase name as {camels[lower]}")
        camels[lower] = field.name
        go_names[go_name] = field.name
        for member in java_accessors(field, message):
            if member in java_members and java_members[member] != field.name:
                errors.append(f"field {where}: Java member {member}() also generated for {java_members[member]}")
            java_members[member] = field.name
        objc = camel(field.name, upper=False)
        if objc in OBJC_RESERVED or any(objc == f or re.match(f"{f}[A-Z0-9_]", objc) for f in OBJC_FAMILIES):
            notes.append(f"field {where}: Objective-C renames property {objc} to {objc}_p")
    for oneof in message.oneof_decl:
        keyword_check("oneof", f"{full}.{oneof.name}", oneof.name)
    for nested in message.nested_type:
        if not nested.options.map_entry:
            check_message(nested, full)
    for enum in message.enum_type:
        check_enum(enum, full)


def check_enum(enum, prefix):
    full = f"{prefix}.{enum.name}"
    keyword_check("enum", full, enum.name)
    for value in enum.value:
        keyword_check("enum value", f"{full}.{value.name}", value.name)


def main():
    files = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], "rb").read()).file
    ours = [f for f in files if f.name.startswith("gamegate/")]
    if not ours:
        print("no gamegate/ file in the descriptor set")
        return 1
    seen = {}
    for file in ours:
        options = file.options
        for option in REQUIRED_OPTIONS:
            if not options.HasField(option):
                errors.append(f"{file.name}: option {option} is missing")
        if options.HasField("java_multiple_files") and not options.java_multiple_files:
            errors.append(f"{file.name}: java_multiple_files is false")
        for option in ("go_package", "java_package", "csharp_namespace", "objc_class_prefix", "php_namespace",
                       "ruby_package"):
            if options.HasField(option):
                seen.setdefault(option, {}).setdefault(getattr(options, option), []).append(file.name)
        top = {m.name for m in file.message_type} | {e.name for e in file.enum_type} | {s.name for s in file.service}
        if options.java_outer_classname in top:
            errors.append(f"{file.name}: java_outer_classname {options.java_outer_classname} is also a type name")
        for part in file.package.split("."):
            for language in ("C++", "Python"):
                if part in KEYWORDS[language]:
                    errors.append(f"package {file.package}: '{part}' is a {language} keyword")
        for part in options.java_package.split("."):
            if part in JAVA:
                errors.append(f"java_package {options.java_package}: '{part}' is a Java keyword")
        go_name = options.go_package.split(";")[-1].rsplit("/", 1)[-1]
        if go_name in GO:
            errors.append(f"go_package {options.go_package}: package name '{go_name}' is a Go keyword")
        for message in file.message_type:
            check_message(message, file.package)
        for enum in file.enum_type:
            check_enum(enum, file.package)
        for service in file.service:
            keyword_check("service", f"{file.package}.{service.name}", service.name)
            for method in service.method:
                keyword_check("method", f"{file.package}.{service.name}.{method.name}", method.name)
    for option, values in seen.items():
        if len(values) > 1:
            errors.append(f"option {option} differs across the package: {values}")
    go_package = ours[0].options.go_package.split(";")[0]
    if go_package and "." not in go_package.split("/")[0]:
        notes.append(f"go_package {go_package!r}: no dot in its first element, so Go module mode takes it for a "
                     "standard-library path (\"is not in GOROOT\"); consumers need GOPATH mode, "
                     f"`require {go_package.split('/')[0]} v0.0.0` + `replace {go_package.split('/')[0]} => DIR`, "
                     "or protoc-gen-go M options")
    prefix = ours[0].options.objc_class_prefix
    if prefix and not re.fullmatch(r"[A-Z][A-Z0-9]{2,}", prefix):
        errors.append(f"objc_class_prefix {prefix!r} should be 3+ uppercase letters")
    print(f"  {len(ours)} files: " + ", ".join(f"{k}={sorted(v)}" for k, v in sorted(seen.items())))
    for note in notes:
        print(f"  note {note}")
    for error in errors:
        print(f"  FAIL {error}")
    print(f"proto lint: {len(errors)} errors, {len(notes)} notes")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
