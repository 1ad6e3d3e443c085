// Glance's default policy (secure RBAC, as Glance ships it): project members manage their
// project's images, readers read them, image members read what is shared with them, admins do
// anything. The service checks these with Glance's image target: project_id (the owner),
// member_id (the caller's project when it is a member), visibility.
#include "image/api/policy.hpp"

namespace nubo::image::api {

std::map<std::string, std::string> default_policy() {
  const std::string admin = "rule:context_is_admin";
  const std::string project_member = "role:member and project_id:%(project_id)s";
  const std::string project_reader = "role:reader and project_id:%(project_id)s";
  const std::string image_member = "project_id:%(member_id)s";
  const std::string visible =
      "project_id:%(project_id)s or " + image_member +
      " or 'community':%(visibility)s or 'public':%(visibility)s or 'shared':%(visibility)s";
  const std::string admin_or_member = admin + " or (" + project_member + ")";
  const std::string admin_or_reader = admin + " or (" + project_reader + ")";
  const std::string get_image = admin + " or (role:reader and (" + visible + "))";
  const std::string download = admin + " or (role:member and (" + visible + "))";
  const std::string member_reader =
      admin + " or role:reader and (project_id:%(project_id)s or " + image_member + ")";
  return {
      {"default", ""},
      {"context_is_admin", "role:admin"},
      {"service_api", "role:service or role:admin"},
      // images
      {"add_image", admin + " or (" + project_member + " and project_id:%(owner)s)"},
      {"delete_image", admin_or_member},
      {"get_image", get_image},
      {"get_images", admin_or_reader},
      {"modify_image", admin_or_member},
      {"publicize_image", admin},
      {"communitize_image", admin_or_member},
      {"download_image", download},
      {"upload_image", admin_or_member},
      {"deactivate", admin_or_member},
      {"reactivate", admin_or_member},
      {"copy_image", admin},
      {"get_image_location", admin_or_reader},
      {"set_image_location", admin_or_member},
      {"delete_image_location", admin},
      // members
      {"add_member", admin_or_member},
      {"delete_member", admin_or_member},
      {"get_member", member_reader},
      {"get_members", member_reader},
      {"modify_member", admin + " or (role:member and " + image_member + ")"},
      // metadefs: anyone reads what is visible to them, admins write
      {"metadef_default", ""},
      {"metadef_admin", admin},
      {"get_metadef_namespace", "rule:metadef_default"},
      {"get_metadef_namespaces", "rule:metadef_default"},
      {"modify_metadef_namespace", "rule:metadef_admin"},
      {"add_metadef_namespace", "rule:metadef_admin"},
      {"delete_metadef_namespace", "rule:metadef_admin"},
      {"get_metadef_object", "rule:metadef_default"},
      {"get_metadef_objects", "rule:metadef_default"},
      {"modify_metadef_object", "rule:metadef_admin"},
      {"add_metadef_object", "rule:metadef_admin"},
      {"delete_metadef_object", "rule:metadef_admin"},
      {"list_metadef_resource_types", "rule:metadef_default"},
      {"get_metadef_resource_type", "rule:metadef_default"},
      {"add_metadef_resource_type_association", "rule:metadef_admin"},
      {"remove_metadef_resource_type_association", "rule:metadef_admin"},
      {"get_metadef_property", "rule:metadef_default"},
      {"get_metadef_properties", "rule:metadef_default"},
      {"modify_metadef_property", "rule:metadef_admin"},
      {"add_metadef_property", "rule:metadef_admin"},
      {"remove_metadef_property", "rule:metadef_admin"},
      {"get_metadef_tag", "rule:metadef_default"},
      {"get_metadef_tags", "rule:metadef_default"},
      {"modify_metadef_tag", "rule:metadef_admin"},
      {"add_metadef_tag", "rule:metadef_admin"},
      {"add_metadef_tags", "rule:metadef_admin"},
      {"delete_metadef_tag", "rule:metadef_admin"},
      {"delete_metadef_tags", "rule:metadef_admin"},
      // cache, tasks (APIs not implemented yet; rules listed for policy.yaml users)
      {"manage_image_cache", admin},
      {"tasks_api_access", admin},
      {"get_task", admin},
      {"get_tasks", admin},
  };
}

}  // namespace nubo::image::api
