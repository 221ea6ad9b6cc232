// Every GraphQL document of the console, typed by gql.tada against schema/schema.graphql.
import { graphql } from '@shared/graphql'

export const CatalogQuery = graphql(`
  query Catalog {
    regions { code name kindLabel }
    departments { code name shortName }
  }
`)

export const ProjectsQuery = graphql(`
  query Projects($first: Int!, $after: String, $filter: ProjectFilterInput) {
    projects(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id code name statusLabel createdAt projectTypeLabel
          region { name }
          enterprise { name }
          stages { code name order status statusLabel overdue deadline }
        }
      }
    }
  }
`)

export const ProjectQuery = graphql(`
  query Project($code: String!) {
    project(code: $code) {
      id code name status statusLabel projectType projectTypeLabel industryCode
      landArea floorArea investment address createdAt
      region { code name }
      enterprise { name creditCode }
      agent { displayName }
      stages {
        id code name order status statusLabel outcomeLabel round acceptedAt deadline completedAt overdue
        leadDepartment { shortName }
        tasks {
          id status statusLabel decision decisionLabel opinion deadline decidedAt paused
          defaultApproved formalOpinionDue formalOpinionAt overdue
          item { code name promisedDays }
          department { code shortName name }
          decidedBy { displayName }
          supplements { reason requestedAt resolvedAt materialType { name } }
        }
      }
      materials {
        id status statusLabel version rejectionReason commitmentDue commitmentSignedBy updatedAt
        materialType { code name }
        versions { version fileName sizeBytes submittedAt note file { contentType url sizeBytes } }
      }
    }
  }
`)

export const AuditQuery = graphql(`
  query Audit($code: String!) {
    project(code: $code) {
      id
      auditTrail { action at entityType after actor { displayName roleLabel } }
    }
  }
`)

export const CreateProjectMutation = graphql(`
  mutation CreateProject($input: CreateProjectInput!) {
    createProject(input: $input) {
      project { id code }
      errors { code message field }
    }
  }
`)

export const JointNoticeQuery = graphql(`
  query JointNotice($projectId: ID!) {
    jointNotice(projectId: $projectId) {
      projectCode projectName regionName projectTypeLabel landArea investment
      totalTimeLimitDays totalLongestPromisedDays notes
      stages {
        code name order leadDepartmentName timeLimitDays longestPromisedDays
        items { code name departmentName promisedDays statutoryDays siteCheck }
        exempted { code name departmentName reason }
      }
      materials { code name description core departmentNames needs { stageCode } }
      designRequirements { departmentName checklistName requirements }
    }
  }
`)

export const StageApplicationQuery = graphql(`
  query StageApplication($projectId: ID!, $stage: String!) {
    stageApplication(projectId: $projectId, stage: $stage) {
      stageCode stageName stageStatus stageDeadline missingCore missingNonCore
      items { deadline item { code name promisedDays } department { shortName } }
      materials {
        core holding holdingLabel latestCommitmentDue setByItem itemNames
        materialType { code name description }
        material { id status statusLabel commitmentDue }
      }
    }
  }
`)

export const AcceptStageMutation = graphql(`
  mutation AcceptStage($input: AcceptStageInput!) {
    acceptStageApplication(input: $input) {
      stage { id code status round deadline tasks { id } }
      errors { code message field }
    }
  }
`)



export const SubmitMaterialMutation = graphql(`
  mutation SubmitMaterial($input: SubmitMaterialInput!) {
    submitMaterial(input: $input) {
      material { id status version }
      errors { code message field }
    }
  }
`)

export const ReviewMaterialMutation = graphql(`
  mutation ReviewMaterial($input: ReviewMaterialInput!) {
    reviewMaterial(input: $input) {
      material { id status }
      errors { code message field }
    }
  }
`)

export const ReviewQueueQuery = graphql(`
  query ReviewQueue($department: String) {
    reviewQueue(department: $department) {
      stageCode stageName light lightLabel workingDaysLeft owesFormalOpinion
      project { code name enterprise { name } }
      task {
        id status statusLabel deadline paused formalOpinionDue
        item { name }
        department { code shortName }
      }
    }
  }
`)

export const DecideTaskMutation = graphql(`
  mutation DecideTask($input: DecideTaskInput!) {
    decideTask(input: $input) {
      task { id status decision }
      stage { id status statusLabel }
      errors { code message field }
    }
  }
`)

export const RequestSupplementMutation = graphql(`
  mutation RequestSupplement($input: RequestSupplementInput!) {
    requestSupplement(input: $input) {
      task { id status decision }
      stage { id status statusLabel }
      errors { code message field }
    }
  }
`)

export const PauseTaskMutation = graphql(`
  mutation PauseTask($input: PauseTaskInput!) {
    pauseTask(input: $input) {
      task { id status paused }
      errors { code message field }
    }
  }
`)

export const ResumeTaskMutation = graphql(`
  mutation ResumeTask($input: ResumeTaskInput!) {
    resumeTask(input: $input) {
      task { id status paused deadline }
      errors { code message field }
    }
  }
`)

export const FormalOpinionMutation = graphql(`
  mutation FileFormalOpinion($input: FileFormalOpinionInput!) {
    fileFormalOpinion(input: $input) {
      task { id formalOpinionDue }
      errors { code message field }
    }
  }
`)

export const MeetingsQuery = graphql(`
  query Meetings($projectId: ID!) {
    meetings(projectId: $projectId) {
      id stageCode stageName scheduledFor place status statusLabel heldAt
      invitations {
        attended agrees opinion promisedDays absentDefault recordedAt statusLabel
        department { code shortName }
      }
    }
  }
`)

export const RecordOpinionMutation = graphql(`
  mutation RecordMeetingOpinion($input: RecordMeetingOpinionInput!) {
    recordMeetingOpinion(input: $input) {
      meeting { id status }
      errors { code message field }
    }
  }
`)

export const ScheduleMeetingMutation = graphql(`
  mutation ScheduleMeeting($input: ScheduleMeetingInput!) {
    scheduleMeeting(input: $input) {
      meeting { id }
      errors { code message field }
    }
  }
`)

export const CloseMeetingMutation = graphql(`
  mutation CloseMeeting($meetingId: ID!) {
    closeMeeting(meetingId: $meetingId) {
      meeting { id status }
      errors { code message field }
    }
  }
`)

export const InspectionsQuery = graphql(`
  query Inspections($projectId: ID!) {
    inspections(projectId: $projectId) {
      id kind kindLabel round status statusLabel due scheduledFor closedAt
      departments {
        conclusion conclusionLabel conclusionNote signedBy signedAt
        department { shortName }
        checks {
          code label outcomeLabel note recordedBy
          photos { id status statusLabel thumbnailUrl url takenAt }
        }
        rectifications { description due done }
      }
    }
  }
`)

export const WallChartQuery = graphql(`
  query WallChart($projects: [String!]) {
    wallChart(projects: $projects) {
      asOf
      rows {
        code name regionCode regionName enterpriseName light departmentCodes
        cells {
          stageCode stageName status statusLabel round deadline light openTasks overdueTasks
          departments { code shortName light openTasks }
        }
      }
    }
  }
`)

export const SupervisionEventsSubscription = graphql(`
  subscription SupervisionEvents {
    supervisionEvents { id key kind kindLabel level levelLabel projectCode projectName departmentName message at }
  }
`)

export const FiguresQuery = graphql(`
  query Figures($month: String) {
    departmentFigures(month: $month) {
      departmentCode departmentName decided onTime onTimeRate defaultApproved averageWorkingDays openNow overdueNow
    }
    stageDurations(month: $month) {
      stageCode stageName order timeLimitDays completed averageWorkingDays maxWorkingDays openNow overdueNow
    }
    setupFigures(month: $month) {
      accepted inReview ready issued refused supplementRequired issuedWithinPromise
      departments { departmentCode departmentName decided onTime defaultApproved openNow overdueNow }
    }
  }
`)

export const FollowUpsQuery = graphql(`
  query FollowUps {
    followUps(first: 50) {
      id score comment ratedAt followUpDue followUpOverdue
      stage { name }
      project { code name enterprise { name } }
    }
  }
`)

export const CloseFollowUpMutation = graphql(`
  mutation CloseFollowUp($ratingId: ID!, $note: String!) {
    closeFollowUp(ratingId: $ratingId, note: $note) {
      rating { id followUpOpen }
      errors { code message field }
    }
  }
`)

/** 企业设立的好差评 (counted apart from construction): the open follow-ups and the latest ratings. */
export const SetupRatingsQuery = graphql(`
  query SetupRatings {
    open: setupRatings(followUpOpen: true, first: 200) {
      ratingId setupCode companyName score comment ratedAt followUpDue followUpOverdue
    }
    recent: setupRatings(rated: true, first: 50) {
      ratingId setupCode companyName score comment ratedAt followUpOpen followUpDoneAt followUpNote
    }
    summary: setupRatingSummary {
      sent rated average bad byScore { score count } followUpsOpen followUpsOverdue followUpsClosed
    }
  }
`)

export const CloseSetupFollowUpMutation = graphql(`
  mutation CloseSetupFollowUp($ratingId: Int!, $note: String!) {
    closeSetupFollowUp(ratingId: $ratingId, note: $note) {
      rating { ratingId followUpOpen }
      errors { code message field }
    }
  }
`)

export const MyRatingsQuery = graphql(`
  query MyRatings {
    myRatings {
      id score comment ratedAt followUpDue
      stage { name }
      project { code name }
    }
  }
`)

export const RateMyServiceMutation = graphql(`
  mutation RateMyService($ratingId: ID!, $score: Int!, $comment: String!) {
    rateMyService(ratingId: $ratingId, score: $score, comment: $comment) {
      rating { id score ratedAt followUpOpen }
      errors { code message field }
    }
  }
`)

export const AlertsQuery = graphql(`
  query Alerts {
    overdue { tasks { taskId } }
    warnings { tasks { taskId } }
  }
`)

export const MaterialTypesQuery = graphql(`
  query MaterialTypes {
    materialTypes { code name description }
  }
`)

export const MaterialFileQuery = graphql(`
  query MaterialFile($code: String!) {
    project(code: $code) {
      id
      materials {
        id
        materialType { code }
        versions { version fileName file { contentType url sizeBytes } }
      }
    }
  }
`)

// --- company setup (企业设立 1+4+X) ---------------------------------------------------------

export const SetupFlowGroupsQuery = graphql(`
  query SetupFlowGroups {
    setupFlowGroups { code name flows { code name businessTypes { code name } } }
  }
`)

export const SetupPlanQuery = graphql(`
  query SetupPlan($businessType: String!) {
    setupPlan(businessType: $businessType) {
      flow { code name }
      coreDays xDays siteCheckDays
      permits { code name core department siteCheck }
      materials { code name core }
    }
  }
`)

/** Setups with their permits; a permit's ``history`` is its earlier rounds (此前各轮,
 * components/SetupRoundHistory.vue). */
export const CompanySetupsQuery = graphql(`
  query CompanySetups {
    companySetups {
      code companyName flow status statusLabel coreDeadline xDeadline issuedAt
      businessType { name }
      materials { code name status statusLabel }
      tasks {
        taskId permit department status statusLabel deadline pausedAt decisionLabel opinion round
        supplements { reason materialType materialName requestedAt resolvedAt }
        history {
          round decisionLabel opinion decidedBy decidedAt defaultApproved reopenedAt
          returnedMaterials { code name reason }
        }
      }
    }
  }
`)

export const AcceptCompanySetupMutation = graphql(`
  mutation AcceptCompanySetup($input: AcceptCompanySetupInput!) {
    acceptCompanySetup(input: $input) {
      setup { code statusLabel }
      errors { code field message }
    }
  }
`)

export const IssueCompanySetupMutation = graphql(`
  mutation IssueCompanySetup($code: String!) {
    issueCompanySetup(code: $code) {
      setup { code statusLabel }
      errors { code field message }
    }
  }
`)

export const SetupTasksQuery = graphql(`
  query SetupTasks {
    setupTasks {
      taskId permit core status statusLabel deadline pausedAt siteCheckDue siteCheckDoneAt round siteCheckId
      supplements { reason materialName requestedAt resolvedAt }
      history {
        round decisionLabel opinion decidedBy decidedAt defaultApproved reopenedAt
        returnedMaterials { code name reason }
      }
    }
  }
`)

/** The setups of the reviewer's department with their materials: what a 补正 may ask for again. */
export const SetupMaterialsQuery = graphql(`
  query SetupMaterials {
    companySetups(first: 200) {
      code companyName
      tasks { taskId }
      materials { code name statusLabel }
    }
  }
`)

/** 补正: the department asks for a material again (or states what is needed); its clock stops. */
export const RequestSetupSupplementMutation = graphql(`
  mutation RequestSetupSupplement($taskId: Int!, $reason: String!, $materialType: String) {
    requestSetupSupplement(taskId: $taskId, reason: $reason, materialType: $materialType) {
      setup { code }
      errors { code field message }
    }
  }
`)

/** The department restarts a stopped clock (a 补正 it no longer waits for counts as received). */
export const ResumeSetupClockMutation = graphql(`
  mutation ResumeSetupClock($taskId: Int!) {
    resumeSetupClock(taskId: $taskId) {
      setup { code }
      errors { code field message }
    }
  }
`)

/** The window receives a material asked for again (or promised under 容缺); waiting permits resume. */
export const DeliverSetupMaterialMutation = graphql(`
  mutation DeliverSetupMaterial($code: String!, $materialType: String!) {
    deliverSetupMaterial(code: $code, materialType: $materialType) {
      setup { code }
      errors { code field message }
    }
  }
`)

/** 重新受理: a setup waiting at 待补正 is accepted again with the supplied materials (every one
 * a department returned among them); the permits asked for 补正 review again with new deadlines. */
export const ReacceptCompanySetupMutation = graphql(`
  mutation ReacceptCompanySetup($code: String!, $materials: [String!]!) {
    reacceptCompanySetup(code: $code, materials: $materials) {
      setup { code statusLabel }
      errors { code field message }
    }
  }
`)

export const DecideSetupTaskMutation = graphql(`
  mutation DecideSetupTask($input: DecideSetupTaskInput!) {
    decideSetupTask(input: $input) {
      setup { code statusLabel }
      errors { code field message }
    }
  }
`)

/** 现场踏勘 of a setup's permit: the department assigns its inspectors to the permit's site-check
 * inspection (siteCheckId); they record it offline in the field app and sign the conclusion. */
export const AssignSiteCheckInspectorsMutation = graphql(`
  mutation AssignSiteCheckInspectors($input: AssignInspectorsInput!) {
    assignInspectors(input: $input) {
      inspection { id status assignments { person { username displayName } } }
      errors { code field message }
    }
  }
`)

/** One's own password; every other session of the person is ended (their tokens revoked). */
export const ChangePasswordMutation = graphql(`
  mutation ChangePassword($currentPassword: String!, $newPassword: String!) {
    changePassword(currentPassword: $currentPassword, newPassword: $newPassword) {
      ok
      tokensRevoked
      errors { code field message }
    }
  }
`)

/** 中心管理办: lift a person's login lockout. */
export const UnlockLoginMutation = graphql(`
  mutation UnlockLogin($username: String!) {
    unlockLogin(username: $username) {
      ok
      errors { code field message }
    }
  }
`)

/** 中心管理办: end every session of a person (all their tokens revoked). */
export const RevokeUserTokensMutation = graphql(`
  mutation RevokeUserTokens($username: String!) {
    revokeUserTokens(username: $username) {
      ok
      tokensRevoked
      errors { code field message }
    }
  }
`)
